/* One sockflow_tcp used by two threads at once, as the header allows: a
 * writer thread sends N messages while the main thread receives their
 * echoes from an echo server, every one checked in order. Prints "OK". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sockflow.h>
#include "check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100000

static void *serve(void *s) {
    static int rc;
    rc = sockflow_server_run((sockflow_server *)s);
    return &rc;
}

static void *writer(void *t) {
    static int rc;
    char msg[64];
    for (int i = 0; i < N; i++) {
        int len = snprintf(msg, sizeof msg, "message %d of the writer thread", i);
        rc = sockflow_tcp_send_msg((sockflow_tcp *)t, msg, (size_t)len);
        if (rc != 0) {
            sockflow_perror("writer: send_msg", rc);
            return &rc;
        }
    }
    return &rc;
}

int main(void) {
    sockflow_args a;
    sockflow_server_config cfg;
    loopback_server(&a, &cfg);
    sockflow_server *s = NULL;
    if (sockflow_tcp_server_new(&a, &cfg, sockflow_handler_echo(), NULL, &s) != 0) return sockflow_perror("server", 1);
    pthread_t server, w;
    pthread_create(&server, NULL, serve, s);
    sockflow_tcp *t = NULL;
    if (sockflow_tcp_connect("127.0.0.1", sockflow_server_port(s), 10000, &t) != 0) return sockflow_perror("connect", 1);
    sockflow_tcp_set_timeouts(t, 60000, 60000);
    pthread_create(&w, NULL, writer, t);
    char buf[128], want[64];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        ssize_t n = sockflow_tcp_recv_msg(t, buf, sizeof buf);
        int len = snprintf(want, sizeof want, "message %d of the writer thread", i);
        if (n != len || strcmp(buf, want) != 0) {
            fprintf(stderr, "echo %d: got %zd \"%s\", want \"%s\"\n", i, n, n >= 0 ? buf : "", want);
            if (n < 0) sockflow_perror("recv_msg", 1);
            bad = 1;
            break;
        }
    }
    void *wrc;
    pthread_join(w, &wrc);
    sockflow_tcp_close(t);
    sockflow_server_stop(s);
    pthread_join(server, NULL);
    sockflow_server_close(s);
    if (bad || *(int *)wrc != 0) return 1;
    printf("OK %d messages\n", N);
    return 0;
}
