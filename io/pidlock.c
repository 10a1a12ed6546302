/* pidlock.c - lock files naming their owner (see pidlock.h). */
#include "io/pidlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/storelock.h"

#define HOST_MAX 256
#define ID_MAX (HOST_MAX + 64)

/* A running process's start time in clock ticks since boot (field 22 of
 * /proc/PID/stat); 0 when there is no such process, or it is a zombie
 * (dead, not yet reaped: it holds nothing any more). */
static unsigned long long start_time_of(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold blanks and ')' */
    unsigned long long start = 0;
    char state = 0;
    /* after ") ": state is field 3; the start time is field 22 */
    if (!p ||
        sscanf(p + 2,
               "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
               "%*d %*d %llu",
               &state, &start) != 2 ||
        state == 'Z' || state == 'X')
        return 0;
    return start;
}

static void host_name(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0 || !out[0])
        snprintf(out, cap, "unknown-host");
    out[cap - 1] = '\0';
    for (char *p = out; *p; p++)
        if (*p == ' ' || *p == '\n')
            *p = '_';
}

/* "host pid start\n" of this process. */
static void my_identity(char *out, size_t cap)
{
    char host[HOST_MAX];
    host_name(host, sizeof host);
    long pid = (long)getpid();
    snprintf(out, cap, "%s %ld %llu\n", host, pid, start_time_of(pid));
}

typedef struct owner_id {
    char host[HOST_MAX];
    long pid;
    unsigned long long start;
} owner_id;

static int parse_owner(const char *text, owner_id *o)
{
    char fmt[32];
    snprintf(fmt, sizeof fmt, "%%%ds %%ld %%llu", HOST_MAX - 1);
    return sscanf(text, fmt, o->host, &o->pid, &o->start) == 3 && o->pid > 0 ? 0 : -1;
}

/* Is the owner recorded in text (the file's mtime given) alive? */
static int owner_alive(const char *text, time_t mtime, unsigned stale_s)
{
    owner_id o;
    if (parse_owner(text, &o) != 0)
        return 0; /* written under the mutex: a torn file is a dead writer's */
    char host[HOST_MAX];
    host_name(host, sizeof host);
    if (strcmp(o.host, host) != 0)
        return time(NULL) - mtime < (time_t)stale_s;
    unsigned long long start = start_time_of(o.pid);
    if (start)
        return o.start == 0 || start == o.start;
    /* no /proc entry (or a zombie): gone, unless /proc is not there to ask */
    if (access("/proc/self/stat", F_OK) == 0)
        return 0;
    return kill((pid_t)o.pid, 0) == 0 || errno == EPERM;
}

static int take_mutex(const char *mutex_path, oc_error *err)
{
    int fd = oc_lock_open(mutex_path, 1, err);
    if (fd >= 0 && oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 1, mutex_path, err) != 0) {
        oc_lock_close(fd);
        return -1;
    }
    return fd;
}

int oc_pidlock_try(const char *path, const char *mutex_path, unsigned stale_s, char *owner,
                   size_t cap, oc_error *err)
{
    char me[ID_MAX];
    my_identity(me, sizeof me);
    int mfd = take_mutex(mutex_path, err);
    if (mfd < 0)
        return -1;
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            rc = oc_write_all(fd, me, strlen(me), path, err);
            close(fd);
            if (rc != 0)
                unlink(path);
            break;
        }
        if (errno != EEXIST) {
            oc_error_errno(err, errno, "create lock %s", path);
            break;
        }
        struct stat st;
        oc_error ignored;
        char *text = oc_read_file(path, ID_MAX, NULL, &ignored);
        if (!text || stat(path, &st) != 0) {
            free(text);
            oc_error_errno(err, errno, "read lock %s", path);
            break;
        }
        if (strcmp(text, me) == 0) {
            free(text);
            rc = 0; /* ours already */
            break;
        }
        if (owner_alive(text, st.st_mtime, stale_s)) {
            if (owner && cap) {
                owner_id o;
                if (parse_owner(text, &o) == 0)
                    snprintf(owner, cap, "%s %ld", o.host, o.pid);
                else
                    snprintf(owner, cap, "?");
            }
            free(text);
            rc = 1;
            break;
        }
        free(text);
        if (unlink(path) != 0 && errno != ENOENT) { /* its owner died: take it over */
            oc_error_errno(err, errno, "remove the stale lock %s", path);
            break;
        }
    }
    oc_lock_close(mfd);
    return rc;
}

void oc_pidlock_release(const char *path, const char *mutex_path)
{
    char me[ID_MAX];
    my_identity(me, sizeof me);
    oc_error ignored;
    int mfd = take_mutex(mutex_path, &ignored);
    if (mfd < 0)
        return;
    char *text = oc_read_file(path, ID_MAX, NULL, &ignored);
    if (text && strcmp(text, me) == 0)
        unlink(path);
    free(text);
    oc_lock_close(mfd);
}

void oc_pidlock_touch(const char *path)
{
    (void)utimensat(AT_FDCWD, path, NULL, 0);
}
