/* version.c - library versions and capabilities (see version.h), and the
 * process-wide set-up of the libraries that need one (oc_global_init). */
#include "io/version.h"

#include "io/http.h"

#include <archive.h>
#include <curl/curl.h>
#include <isa-l.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <zstd.h>

#include <stdio.h>
#include <string.h>

#ifndef OCCY_VERSION
#define OCCY_VERSION "0.0.0"
#endif

const char *oc_version(void)
{
    return OCCY_VERSION;
}

int oc_version_curl_has_http2(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return (v->features & CURL_VERSION_HTTP2) != 0;
}

size_t oc_version_describe(char *buf, size_t size)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    const char *av = archive_version_string();
    if (strncmp(av, "libarchive ", 11) == 0)
        av += 11;
    int n = snprintf(buf, size,
                     "occystrap %s\n"
                     "  libcurl    %s (%s; HTTP/2 %s%s%s)\n"
                     "  libuv      %s\n"
                     "  jansson    %s\n"
                     "  libarchive %s\n"
                     "  ISA-L      %d.%d.%d (igzip inflate in use for gzip layers)\n"
                     "  libcrypto  %s (SHA-256)\n"
                     "  libzstd    %s (zstd layers)\n",
                     OCCY_VERSION, cv->version, cv->ssl_version ? cv->ssl_version : "no TLS",
                     oc_version_curl_has_http2() ? "available" : "NOT available",
                     cv->nghttp2_version ? ", nghttp2 " : "",
                     cv->nghttp2_version ? cv->nghttp2_version : "", uv_version_string(),
                     jansson_version_str(), av, ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION,
                     ISAL_PATCH_VERSION, OpenSSL_version(OPENSSL_VERSION), ZSTD_versionString());
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : (size ? size - 1 : 0);
}

int oc_global_init(oc_error *err)
{
    return oc_http_global_init(err);
}

void oc_global_cleanup(void)
{
    oc_http_global_cleanup();
}
