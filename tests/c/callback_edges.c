/* A custom server set up the way a program without a command line does it
 * (sockflow_args_init + sockflow_server_config_init) has no quit word: a
 * client's "quit" is an ordinary message. A callback result that is no
 * sockflow_action (7 here) is treated as SOCKFLOW_ACTION_CLOSE, every time;
 * it is reported on stderr once per process (checked by
 * tests/callback_edges.rs). Prints "OK" and exits 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sockflow.h>
#include "check.h"
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int reasons[8], closes;

static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len) {
    (void)ud;
    if (strcmp(msg, "odd") == 0) return 7;
    return sockflow_conn_send(c, msg, len) == 0 ? SOCKFLOW_ACTION_CONTINUE : -1;
}

static void on_close(void *ud, sockflow_conn *c, int reason) {
    (void)ud, (void)c;
    pthread_mutex_lock(&lock);
    if (closes < 8) reasons[closes++] = reason;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void *run(void *s) {
    static int rc;
    rc = sockflow_server_run((sockflow_server *)s);
    return &rc;
}

/* Sends "odd" on a new connection: the server closes it (after "x" echoed). */
static void odd_closes(int port, int n) {
    sockflow_tcp *t = NULL;
    char buf[64];
    CHECK(sockflow_tcp_connect("127.0.0.1", port, 10000, &t) == 0, "connect");
    if (!t) return;
    sockflow_tcp_set_timeouts(t, 20000, 20000);
    CHECK(sockflow_tcp_send_msg(t, "x", 1) == 0 && sockflow_tcp_send_msg(t, "odd", 3) == 0, "send");
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) == 1 && strcmp(buf, "x") == 0, "echo of x");
    ssize_t end = sockflow_tcp_recv_msg(t, buf, sizeof buf);
    CHECK(end == SOCKFLOW_ECLOSED, "closed after odd: %zd", end);
    sockflow_tcp_close(t);
    pthread_mutex_lock(&lock);
    while (closes < n) pthread_cond_wait(&changed, &lock);
    CHECK(reasons[n - 1] == SOCKFLOW_CLOSE_REASON_HANDLER, "close reason %d", reasons[n - 1]);
    pthread_mutex_unlock(&lock);
}

int main(void) {
    sockflow_args a;
    sockflow_server_config cfg;
    loopback_server(&a, &cfg);
    CHECK(a.quit[0] == 0, "sockflow_args_init sets no quit word, got \"%s\"", a.quit);
    sockflow_handler h = {NULL, on_message, on_close, 0};
    sockflow_server *s = NULL;
    if (sockflow_tcp_server_new(&a, &cfg, h, NULL, &s) != 0) return sockflow_perror("server_new", 1);
    int port = sockflow_server_port(s);
    pthread_t th;
    pthread_create(&th, NULL, run, s);

    sockflow_tcp *t = NULL;
    char buf[64];
    if (sockflow_tcp_connect("127.0.0.1", port, 10000, &t) != 0) return sockflow_perror("connect", 1);
    sockflow_tcp_set_timeouts(t, 20000, 20000);
    CHECK(sockflow_tcp_send_msg(t, "quit", 4) == 0 && sockflow_tcp_send_msg(t, "after", 5) == 0, "send");
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) == 4 && strcmp(buf, "quit") == 0, "quit echoed, got \"%s\"", buf);
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) == 5 && strcmp(buf, "after") == 0, "after echoed");
    sockflow_tcp_close(t);
    pthread_mutex_lock(&lock);
    while (closes < 1) pthread_cond_wait(&changed, &lock);
    CHECK(reasons[0] == SOCKFLOW_CLOSE_REASON_PEER, "closed by the client: %d", reasons[0]);
    pthread_mutex_unlock(&lock);

    odd_closes(port, 2);
    odd_closes(port, 3);

    sockflow_server_stop(s);
    pthread_join(th, NULL);
    sockflow_server_close(s);
    return checks_done();
}
