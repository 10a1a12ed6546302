/* test_pidlock.c - lock files naming their owner: taken when free, busy
 * while the owner lives, taken over when it died (killed without
 * releasing, a reused pid, a torn file, another host's lock left untouched
 * for longer than the stale time), released only by its owner, and won by
 * exactly one of several processes racing for it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/pidlock.h"
#include "testutil.h"

static char base[256], lock[300], mutex[300];

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "pidlock") != 0)
        return -1;
    snprintf(lock, sizeof lock, "%s/blob.lock", base);
    snprintf(mutex, sizeof mutex, "%s/mutex", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(base);
}

static void put(const char *text, time_t age)
{
    FILE *f = fopen(lock, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    if (age) {
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        assert_int_equal(utimensat(AT_FDCWD, lock, ts, 0), 0);
    }
}

static int exists(void)
{
    struct stat st;
    return stat(lock, &st) == 0;
}

static void test_take_release(void **state)
{
    (void)state;
    oc_error err;
    char owner[300];
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, owner, sizeof owner, &err), 0);
    assert_true(exists());
    /* ours already: taken again, not a wait on ourselves */
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, owner, sizeof owner, &err), 0);
    oc_pidlock_release(lock, mutex);
    assert_false(exists());
}

static void test_live_and_dead_owner(void **state)
{
    (void)state;
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        oc_error err;
        char c = oc_pidlock_try(lock, mutex, 60, NULL, 0, &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        _exit(0); /* dies holding the lock, as a killed process does */
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    oc_error err;
    char owner[300] = "";
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, owner, sizeof owner, &err), 1);
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, " %ld", (long)child);
    assert_non_null(strstr(owner, pid_text));
    /* not ours: release leaves it */
    oc_pidlock_release(lock, mutex);
    assert_true(exists());
    assert_int_equal(write(go[1], "x", 1), 1);
    /* dead but not reaped yet (a zombie): it holds nothing any more */
    struct timespec pause = {0, 20 * 1000 * 1000};
    int r = 1;
    for (int i = 0; i < 250 && r == 1; i++) {
        nanosleep(&pause, NULL);
        r = oc_pidlock_try(lock, mutex, 60, owner, sizeof owner, &err);
    }
    assert_int_equal(r, 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    oc_pidlock_release(lock, mutex);
    assert_false(exists());
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
}

static void test_other_owners(void **state)
{
    (void)state;
    oc_error err;
    char host[256], text[400];
    assert_int_equal(gethostname(host, sizeof host), 0);
    /* our host, a live pid (ours) but another start time: a reused pid */
    snprintf(text, sizeof text, "%s %ld 1\n", host, (long)getpid());
    put(text, 0);
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, NULL, 0, &err), 0);
    /* a torn file */
    put("", 0);
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, NULL, 0, &err), 0);
    /* another host: alive while it touches the file */
    put("some-other-host.example 4242 12345\n", 10);
    char owner[300] = "";
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, owner, sizeof owner, &err), 1);
    assert_string_equal(owner, "some-other-host.example 4242");
    put("some-other-host.example 4242 12345\n", 120);
    assert_int_equal(oc_pidlock_try(lock, mutex, 60, NULL, 0, &err), 0);
    /* touching keeps ours fresh */
    oc_pidlock_touch(lock);
    struct stat st;
    assert_int_equal(stat(lock, &st), 0);
    assert_true(time(NULL) - st.st_mtime < 5);
    oc_pidlock_release(lock, mutex);
    assert_false(exists());
}

static void test_race(void **state)
{
    (void)state;
    enum { PROCS = 6 };
    int go[2], results[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(results), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char c;
            if (read(go[0], &c, 1) != 1)
                _exit(2);
            oc_error err;
            int r = oc_pidlock_try(lock, mutex, 60, NULL, 0, &err);
            c = r == 0 ? 'w' : r == 1 ? 'b' : 'e';
            if (write(results[1], &c, 1) != 1)
                _exit(3);
            sleep(1); /* stay alive while the others look */
            _exit(0);
        }
    }
    char gos[PROCS];
    memset(gos, 'g', sizeof gos);
    assert_int_equal(write(go[1], gos, PROCS), PROCS);
    int won = 0, busy = 0;
    for (int p = 0; p < PROCS; p++) {
        char c;
        assert_int_equal(read(results[0], &c, 1), 1);
        won += c == 'w';
        busy += c == 'b';
    }
    for (int p = 0; p < PROCS; p++)
        waitpid(pids[p], NULL, 0);
    assert_int_equal(won, 1);
    assert_int_equal(busy, PROCS - 1);
    close(go[0]);
    close(go[1]);
    close(results[0]);
    close(results[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_take_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_and_dead_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
