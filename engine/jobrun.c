/* jobrun.c - the lifetime of one library job run on the caller's loop:
 * its finish deferred to its timer, its ending reported (see jobrun.h). */
#include "engine/jobrun.h"

#include <stddef.h>

static oc_jobrun *of_timer(uv_timer_t *t)
{
    return (oc_jobrun *)(void *)((char *)t - offsetof(oc_jobrun, timer));
}

void oc_jobrun_init(oc_jobrun *jr, oc_engine *e, void *run, void (*complete)(void *run),
                    void (*release)(void *run))
{
    jr->e = e;
    jr->complete = complete;
    jr->release = release;
    oc_error_clear(&jr->err);
    uv_timer_init(e->loop, &jr->timer);
    jr->timer.data = run;
}

static void on_finish_timer(uv_timer_t *t)
{
    of_timer(t)->complete(t->data);
}

void oc_jobrun_finish_soon(oc_jobrun *jr)
{
    uv_timer_stop(&jr->timer);
    uv_timer_start(&jr->timer, on_finish_timer, 0, 0);
}

void oc_jobrun_fail(oc_jobrun *jr, int config_error)
{
    jr->config_error = config_error;
    oc_jobrun_finish_soon(jr);
}

void oc_jobrun_maybe_done(oc_jobrun *jr, size_t ended, size_t total)
{
    if (jr->starting || ended != total)
        return;
    oc_jobrun_finish_soon(jr);
}

void oc_jobrun_ending(oc_jobrun *jr, const oc_error **error, int *config_error)
{
    if (jr->err.code != OC_OK)
        *error = &jr->err;
    *config_error = jr->config_error;
    oc_event ev = {.kind = OC_EVENT_JOB_FINISHED};
    oc_engine_emit(jr->e, &ev);
}

static void on_closed(uv_handle_t *h)
{
    of_timer((uv_timer_t *)h)->release(h->data);
}

void oc_jobrun_close(oc_jobrun *jr)
{
    uv_close((uv_handle_t *)&jr->timer, on_closed);
}
