/* progress.c - status line and plain progress lines (see progress.h). */
#include "cli/progress.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define TICK_BAR_MS 250

struct oc_progress {
    uv_timer_t timer;
    oc_progress_mode mode;
    FILE *out;
    unsigned images_total;
    unsigned images_done;
    unsigned images_failed;
    unsigned layers_active;
    uint64_t bytes_expected;
    uint64_t bytes_done;
    uint64_t started_ms;
    uint64_t plain_interval_ms;
    int bar_drawn;
    int finished;
};

int oc_progress_mode_parse(const char *text, oc_progress_mode *mode)
{
    static const char *names[] = {"auto", "bar", "plain", "none"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *mode = (oc_progress_mode)i;
            return 0;
        }
    }
    return -1;
}

oc_progress_mode oc_progress_mode_of(const oc_progress *p)
{
    return p->mode;
}

static void human_bytes(uint64_t n, char *out, size_t outsz)
{
    const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(out, outsz, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void status_text(oc_progress *p, char *buf, size_t bufsz, int with_bar)
{
    uint64_t now = uv_now(p->timer.loop);
    double secs = (double)(now - p->started_ms) / 1000.0;
    double rate = secs > 0.2 ? (double)p->bytes_done / secs : 0;
    char done[32], total[32], rate_s[32], eta[32] = "--:--";
    human_bytes(p->bytes_done, done, sizeof done);
    human_bytes(p->bytes_expected, total, sizeof total);
    human_bytes((uint64_t)rate, rate_s, sizeof rate_s);
    if (rate > 0 && p->bytes_expected > p->bytes_done) {
        uint64_t left = (uint64_t)((double)(p->bytes_expected - p->bytes_done) / rate);
        snprintf(eta, sizeof eta, "%" PRIu64 ":%02" PRIu64, left / 60, left % 60);
    } else if (p->bytes_expected && p->bytes_done >= p->bytes_expected) {
        snprintf(eta, sizeof eta, "0:00");
    }
    char bar[BAR_WIDTH + 3] = "";
    if (with_bar) {
        int fill = p->bytes_expected
                       ? (int)((double)p->bytes_done * BAR_WIDTH / (double)p->bytes_expected)
                       : 0;
        if (fill > BAR_WIDTH)
            fill = BAR_WIDTH;
        bar[0] = '[';
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH + 1] = ']';
        bar[BAR_WIDTH + 2] = '\0';
    }
    snprintf(buf, bufsz, "%s%s%s / %s  %s/s  ETA %s  images %u/%u%s  layers active %u", bar,
             with_bar ? " " : "", done, total, rate_s, eta, p->images_done, p->images_total,
             p->images_failed ? " (some failed)" : "", p->layers_active);
}

static void clear_bar(oc_progress *p)
{
    if (p->bar_drawn) {
        fputs("\r\033[K", p->out);
        p->bar_drawn = 0;
    }
}

static void draw(oc_progress *p)
{
    char line[256];
    if (p->mode == OC_PROGRESS_BAR) {
        status_text(p, line, sizeof line, 1);
        fprintf(p->out, "\r\033[K%s", line);
        p->bar_drawn = 1;
    } else if (p->mode == OC_PROGRESS_PLAIN) {
        status_text(p, line, sizeof line, 0);
        fprintf(p->out, "status: %s\n", line);
    }
    fflush(p->out);
}

static void on_tick(uv_timer_t *t)
{
    draw(t->data);
}

oc_progress *oc_progress_new(uv_loop_t *loop, oc_progress_mode mode, FILE *out,
                             unsigned images_total, uint64_t plain_interval_ms)
{
    oc_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (mode == OC_PROGRESS_AUTO)
        mode = isatty(fileno(out)) ? OC_PROGRESS_BAR : OC_PROGRESS_PLAIN;
    p->mode = mode;
    p->out = out;
    p->images_total = images_total;
    p->plain_interval_ms = plain_interval_ms ? plain_interval_ms : 10000;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->started_ms = uv_now(loop);
    if (mode == OC_PROGRESS_BAR || mode == OC_PROGRESS_PLAIN) {
        uint64_t every = mode == OC_PROGRESS_BAR ? TICK_BAR_MS : p->plain_interval_ms;
        uv_timer_start(&p->timer, on_tick, every, every);
    }
    uv_unref((uv_handle_t *)&p->timer);
    return p;
}

void oc_progress_expect_bytes(oc_progress *p, uint64_t bytes)
{
    p->bytes_expected += bytes;
}

void oc_progress_bytes(oc_progress *p, uint64_t bytes)
{
    p->bytes_done += bytes;
}

void oc_progress_layer_started(oc_progress *p)
{
    p->layers_active++;
}

void oc_progress_layer_finished(oc_progress *p)
{
    if (p->layers_active)
        p->layers_active--;
}

void oc_progress_print(oc_progress *p, const char *line)
{
    if (p->mode == OC_PROGRESS_NONE)
        return;
    clear_bar(p);
    fprintf(p->out, "%s\n", line);
    if (p->mode == OC_PROGRESS_BAR && !p->finished)
        draw(p);
    fflush(p->out);
}

void oc_progress_image_done(oc_progress *p, int ok, const char *line)
{
    p->images_done++;
    if (!ok)
        p->images_failed++;
    oc_progress_print(p, line);
}

static void progress_closed(uv_handle_t *h)
{
    free(h->data);
}

void oc_progress_finish(oc_progress *p)
{
    if (!p)
        return;
    uv_timer_stop(&p->timer);
    if (p->mode == OC_PROGRESS_BAR || p->mode == OC_PROGRESS_PLAIN) {
        clear_bar(p);
        char line[256];
        status_text(p, line, sizeof line, 0);
        fprintf(p->out, "done: %s\n", line);
        fflush(p->out);
    }
    p->finished = 1;
    uv_close((uv_handle_t *)&p->timer, progress_closed);
}
