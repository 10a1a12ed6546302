/* version.h - occystrap's own version and the versions and capabilities of
 * the libraries it runs on, for `occystrap --version`. */
#ifndef OC_IO_VERSION_H
#define OC_IO_VERSION_H

#include "occystrap/occystrap.h"

/* oc_version() and oc_version_describe() are in the public header. */
/* 1 when the linked libcurl can speak HTTP/2. */
int oc_version_curl_has_http2(void);

#endif
