/* version.h - occystrap's own version and the versions and capabilities of
 * the libraries it runs on, for `occystrap --version`. */
#ifndef OC_IO_VERSION_H
#define OC_IO_VERSION_H

#include <stdio.h>

const char *oc_version(void);
/* One line per library: name, version, and what matters about it
 * (HTTP/2 through nghttp2, ISA-L inflate in use). */
void oc_version_print(FILE *out);
/* 1 when the linked libcurl can speak HTTP/2. */
int oc_version_curl_has_http2(void);

#endif
