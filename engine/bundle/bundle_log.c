/* bundle_log.c - log events and the clock of the bundle calls (see
 * bundle_log.h). */
#include "engine/bundle/bundle_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void oc_bundle_say(oc_event_cb on_event, void *opaque, oc_log_level level, const char *fmt, ...)
{
    if (!on_event)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oc_event ev = {.kind = OC_EVENT_LOG, .level = level, .message = msg};
    on_event(&ev, opaque);
}

double oc_bundle_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
