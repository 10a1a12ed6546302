/* mirror_two.c - the occystrap library on a loop of the caller's own: two
 * images mirrored into a store while a timer of the program ticks beside
 * the run. Build: cc mirror_two.c $(pkg-config --cflags --libs occystrap).
 * Usage: mirror_two REGISTRY STORE IMAGE:TAG IMAGE:TAG (plain HTTP). */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include <occystrap/occystrap.h>

static int ticks, failed = -1;

static void on_tick(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

static void on_event(const oc_event *ev, void *opaque)
{
    (void)opaque;
    if (ev->kind == OC_EVENT_ENTRY_FINISHED)
        printf("entry %s: %s\n", ev->entry->reference,
               ev->entry->error ? ev->entry->error->msg : "done");
}

static void on_done(const oc_mirror_report *rep, void *opaque)
{
    uv_timer_t *timer = opaque;
    printf("mirrored %zu of %zu entries (%zu failed)%s%s\n", rep->fetched + rep->up_to_date,
           rep->n_entries, rep->failed, rep->error ? ": " : "", rep->error ? rep->error->msg : "");
    failed = rep->error ? 1 : (int)rep->failed;
    uv_timer_stop(timer);
}

static void on_engine_closed(void *opaque)
{
    *(int *)opaque = 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s REGISTRY STORE IMAGE:TAG IMAGE:TAG\n", argv[0]);
        return 2;
    }
    char list[1024];
    snprintf(list, sizeof list, "%s/%s\n%s/%s\n", argv[1], argv[3], argv[1], argv[4]);
    oc_error err;
    if (oc_global_init(&err) != 0)
        return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_tick, 1, 1); /* the program's own work, beside the run */

    oc_engine_options eo;
    oc_engine_options_init(&eo);
    eo.insecure = 1;
    eo.on_event = on_event;
    oc_engine *engine;
    if (oc_engine_new(&loop, &eo, &engine, &err) != 0) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return 1;
    }
    oc_mirror_options mo;
    oc_mirror_options_init(&mo);
    mo.list_text = list;
    mo.store_dir = argv[2];
    if (oc_mirror_start(engine, &mo, on_done, &timer, &err) != 0) {
        fprintf(stderr, "mirror: %s\n", err.msg);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* ends when the mirror is done and the timer stopped */

    int closed = 0;
    oc_engine_close(engine, on_engine_closed, &closed);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    oc_global_cleanup();
    printf("timer ticks during the run: %d; engine closed: %s\n", ticks, closed ? "yes" : "no");
    return failed == 0 && closed && ticks > 0 ? 0 : 1;
}
