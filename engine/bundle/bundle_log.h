/* bundle_log.h - what the bundle calls (oc_bundle, oc_import) share to
 * report: log lines as OC_EVENT_LOG events through the caller's callback,
 * and the clock their reports' durations are taken from. */
#ifndef OC_ENGINE_BUNDLE_BUNDLE_LOG_H
#define OC_ENGINE_BUNDLE_BUNDLE_LOG_H

#include "occystrap/occystrap.h"

/* One OC_EVENT_LOG of level with the formatted message, to on_event (NULL:
 * nothing is said). */
void oc_bundle_say(oc_event_cb on_event, void *opaque, oc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Seconds on the monotonic clock (for durations). */
double oc_bundle_seconds(void);

#endif
