/* jobrun.h - the lifetime of one library job run (mirror, push) on the
 * caller's loop: the run's own failure, its finish deferred to a timer (so
 * it never happens inside the callbacks of the work that ended it), the
 * JOB_FINISHED event before the caller's callback, and the run's memory
 * freed once that timer has closed.
 *
 * A run embeds an oc_jobrun. The timer's data is the run: the run may use
 * the timer for polls of its own (mirror's lock wait) until it finishes.
 * complete(run) runs from the timer: it writes the report, calls
 * oc_jobrun_ending, the caller's callback, then oc_jobrun_close, after
 * which release(run) frees the run. */
#ifndef OC_ENGINE_JOBRUN_H
#define OC_ENGINE_JOBRUN_H

#include <stddef.h>

#include <uv.h>

#include "engine/registry/engine.h"
#include "io/error.h"

typedef struct oc_jobrun {
    uv_timer_t timer; /* data: the run */
    oc_engine *e;
    void (*complete)(void *run);
    void (*release)(void *run);
    oc_error err;     /* the run's own failure (not one of its jobs') */
    int config_error; /* err is the caller's configuration */
    int starting;     /* jobs are being started: a finish waits for the loop */
} oc_jobrun;

/* The timer on e's loop, err cleared. */
void oc_jobrun_init(oc_jobrun *jr, oc_engine *e, void *run, void (*complete)(void *run),
                    void (*release)(void *run));
/* complete(run) from the loop, once this turn's callbacks are over. */
void oc_jobrun_finish_soon(oc_jobrun *jr);
/* The run failed before (or instead of) its jobs: err says why. */
void oc_jobrun_fail(oc_jobrun *jr, int config_error);
/* Every job has ended (ended == total) and none is being started: finish. */
void oc_jobrun_maybe_done(oc_jobrun *jr, size_t ended, size_t total);
/* The report's error (NULL when none) and config_error, then JOB_FINISHED:
 * just before the caller's callback. */
void oc_jobrun_ending(oc_jobrun *jr, const oc_error **error, int *config_error);
/* After the caller's callback: release(run) once the timer has closed. */
void oc_jobrun_close(oc_jobrun *jr);

#endif
