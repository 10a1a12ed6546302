/* progress.h - what a long run tells a human while it works.
 *
 * Events (bytes received, layers started and finished, images done) come
 * from the loop thread. On a terminal a status line is redrawn four times a
 * second: a bar of bytes done of bytes expected, rate, ETA, images done of
 * total, active layers. Without a terminal (cron, CI logs) each finished
 * image prints one plain line and a status line is printed every interval.
 * NONE prints only what the caller prints. The timer does not keep the loop
 * alive. */
#ifndef OC_CLI_PROGRESS_H
#define OC_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include <uv.h>

typedef enum oc_progress_mode {
    OC_PROGRESS_AUTO = 0, /* BAR when out is a terminal, else PLAIN */
    OC_PROGRESS_BAR,
    OC_PROGRESS_PLAIN,
    OC_PROGRESS_NONE,
} oc_progress_mode;

typedef struct oc_progress oc_progress;

/* plain_interval_ms: status line period in PLAIN mode (0 = 10 s). */
oc_progress *oc_progress_new(uv_loop_t *loop, oc_progress_mode mode, FILE *out,
                             unsigned images_total, uint64_t plain_interval_ms);
/* Parse "auto|bar|plain|none"; -1 if unknown. */
int oc_progress_mode_parse(const char *text, oc_progress_mode *mode);
oc_progress_mode oc_progress_mode_of(const oc_progress *p);

void oc_progress_expect_bytes(oc_progress *p, uint64_t bytes);
void oc_progress_bytes(oc_progress *p, uint64_t bytes);
void oc_progress_layer_started(oc_progress *p);
void oc_progress_layer_finished(oc_progress *p);
/* One finished image: ok, or failed with a reason; line is printed as is
 * (after clearing the bar) in BAR and PLAIN modes. */
void oc_progress_image_done(oc_progress *p, int ok, const char *line);
/* A message that must not be mangled by the bar (a warning). */
void oc_progress_print(oc_progress *p, const char *line);
/* Final status line, timer stopped; the handle closes with the loop. */
void oc_progress_finish(oc_progress *p);

#endif
