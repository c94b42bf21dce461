/* sockflow_server_close on a running server stops it and waits for
 * sockflow_server_run to return; a second concurrent run is refused with
 * SOCKFLOW_EBUSY; free from one of the server's own callbacks stops it and
 * the handle is freed when run returns. Prints "OK" and exits 0. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sockflow.h>
#include "check.h"
#include <stdio.h>
#include <string.h>


static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int run_rc = 99;

static void *run(void *s) {
    int rc = sockflow_server_run((sockflow_server *)s);
    pthread_mutex_lock(&lock);
    run_rc = rc;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int closed; /* on_close calls seen */

static int echo(void *ud, sockflow_conn *c, const char *msg, size_t len) {
    (void)ud;
    return sockflow_conn_send(c, msg, len);
}

static void count_close(void *ud, sockflow_conn *c, int reason) {
    (void)ud;
    (void)c;
    (void)reason;
    pthread_mutex_lock(&lock);
    closed++;
    pthread_mutex_unlock(&lock);
}

static int closes(void) {
    pthread_mutex_lock(&lock);
    int n = closed;
    pthread_mutex_unlock(&lock);
    return n;
}

static sockflow_server *self_freeing;

static int free_myself(void *ud, sockflow_conn *c, const char *msg, size_t len) {
    (void)ud;
    (void)msg;
    (void)len;
    sockflow_conn_send_str(c, "bye");
    sockflow_server_close(self_freeing);
    return SOCKFLOW_ACTION_CONTINUE;
}

static sockflow_server *start(sockflow_handler h, int mode, pthread_t *th) {
    sockflow_args a;
    sockflow_server_config cfg;
    loopback_server(&a, &cfg);
    cfg.mode = mode;
    sockflow_server *s = NULL;
    if (sockflow_tcp_server_new(&a, &cfg, h, NULL, &s) != 0) {
        sockflow_perror("server_new", 1);
        return NULL;
    }
    pthread_create(th, NULL, run, s);
    return s;
}

static sockflow_tcp *client(int port) {
    sockflow_tcp *t = NULL;
    if (sockflow_tcp_connect("127.0.0.1", port, 10000, &t) != 0) {
        sockflow_perror("connect", 1);
        return NULL;
    }
    sockflow_tcp_set_timeouts(t, 20000, 20000);
    return t;
}

static void scenario(int mode) {
    char buf[256], err[256];
    pthread_t th;
    closed = 0;

    /* 1. free while run runs on another thread. */
    sockflow_handler counting = {NULL, echo, count_close, 0};
    sockflow_server *s = start(counting, mode, &th);
    if (!s) {
        failures++;
        return;
    }
    sockflow_tcp *t = client(sockflow_server_port(s));
    if (!t) {
        failures++;
        return;
    }
    /* An echo proves run is serving. */
    CHECK(sockflow_tcp_send_msg(t, "ping", 4) == 0, "send ping");
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) == 4 && strcmp(buf, "ping") == 0, "echo of ping");
    int rc = sockflow_server_run(s);
    sockflow_last_error(err, sizeof err);
    CHECK(rc == SOCKFLOW_EBUSY, "second run returned %d, want SOCKFLOW_EBUSY (%d)", rc, SOCKFLOW_EBUSY);
    CHECK(strstr(err, "already running") != NULL, "second run message: \"%s\"", err);
    sockflow_server_close(s);
    /* The run finished its work (connections closed, on_close called)
     * before free returned and released the handle. */
    CHECK(closes() == 1, "free returned before the run closed its connection (%d on_close calls)", closes());
    pthread_join(th, NULL);
    CHECK(run_rc == 0, "run returned %d", run_rc);
    ssize_t n = sockflow_tcp_recv_msg(t, buf, sizeof buf);
    CHECK(n == SOCKFLOW_ECLOSED, "client after free: %zd, want SOCKFLOW_ECLOSED", n);
    sockflow_tcp_close(t);

    /* 2. free from one of the server's own callbacks. */
    sockflow_handler h = {NULL, free_myself, NULL, 0};
    self_freeing = start(h, mode, &th);
    if (!self_freeing) {
        failures++;
        return;
    }
    t = client(sockflow_server_port(self_freeing));
    if (!t) {
        failures++;
        return;
    }
    CHECK(sockflow_tcp_send_msg(t, "x", 1) == 0, "send x");
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) == 3 && strcmp(buf, "bye") == 0, "reply before the stop");
    pthread_join(th, NULL);
    CHECK(run_rc == 0, "run of the self-freeing server returned %d", run_rc);
    n = sockflow_tcp_recv_msg(t, buf, sizeof buf);
    CHECK(n == SOCKFLOW_ECLOSED, "client after free from a callback: %zd", n);
    sockflow_tcp_close(t);
}

int main(void) {
    scenario(SOCKFLOW_MODE_EVENT_LOOP);
    scenario(SOCKFLOW_MODE_THREAD_PER_CONNECTION);
    return checks_done();
}
