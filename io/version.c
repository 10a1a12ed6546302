/* version.c - library versions and capabilities (see version.h). */
#include "io/version.h"

#include <archive.h>
#include <curl/curl.h>
#include <isa-l.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <zstd.h>

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

void oc_version_print(FILE *out)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    fprintf(out, "occystrap %s\n", OCCY_VERSION);
    fprintf(out, "  libcurl    %s (%s; HTTP/2 %s%s%s)\n", cv->version,
            cv->ssl_version ? cv->ssl_version : "no TLS",
            oc_version_curl_has_http2() ? "available" : "NOT available",
            cv->nghttp2_version ? ", nghttp2 " : "",
            cv->nghttp2_version ? cv->nghttp2_version : "");
    fprintf(out, "  libuv      %s\n", uv_version_string());
    fprintf(out, "  jansson    %s\n", jansson_version_str());
    const char *av = archive_version_string();
    if (strncmp(av, "libarchive ", 11) == 0)
        av += 11;
    fprintf(out, "  libarchive %s\n", av);
    fprintf(out, "  ISA-L      %d.%d.%d (igzip inflate in use for gzip layers)\n",
            ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION, ISAL_PATCH_VERSION);
    fprintf(out, "  libcrypto  %s (SHA-256)\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(out, "  libzstd    %s (zstd layers)\n", ZSTD_versionString());
}
