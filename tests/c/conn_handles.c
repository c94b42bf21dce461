/* A sockflow_conn * kept past its callback must never reach another
 * connection: used in another connection's callback, from another thread,
 * outside any callback, or as a garbage pointer, it is refused with
 * SOCKFLOW_EBADHANDLE. Prints "OK" and exits 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sockflow.h>
#include "check.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>


static sockflow_conn *kept; /* the first connection's handle, kept (the bug) */
static char stale_msg[512];
static int wrap_rc[3]; /* lengths running past the end of memory, in a callback */

static void *use_from_thread(void *c) {
    static int rc;
    rc = sockflow_conn_send_str((sockflow_conn *)c, "from another thread");
    return &rc;
}

static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len) {
    (void)ud;
    (void)len;
    if (!kept) {
        const void *top = (const void *)(UINTPTR_MAX - 15);
        wrap_rc[0] = sockflow_conn_send(c, top, 100);
        wrap_rc[1] = sockflow_conn_broadcast(c, top, 100, 0);
        wrap_rc[2] = sockflow_conn_send_to(c, sockflow_conn_id(c), top, 100);
        kept = c;
        return sockflow_conn_send_str(c, "first");
    }
    /* Another connection's callback: the kept handle must not send here. */
    int send_rc = sockflow_conn_send_str(kept, "LEAK");
    sockflow_last_error(stale_msg, sizeof stale_msg);
    uint64_t id = sockflow_conn_id(kept);
    int id_code = sockflow_last_error_code();
    /* The current handle, used from another thread while this callback runs. */
    pthread_t th;
    void *thread_rc = NULL;
    pthread_create(&th, NULL, use_from_thread, c);
    pthread_join(th, &thread_rc);
    char reply[256];
    snprintf(reply, sizeof reply, "send=%d id=%llu code=%d thread=%d msg=%s", send_rc, (unsigned long long)id,
             id_code, *(int *)thread_rc, msg);
    return sockflow_conn_send_str(c, reply);
}

static void *run(void *s) {
    static int rc;
    rc = sockflow_server_run((sockflow_server *)s);
    return &rc;
}

static void exchange(sockflow_tcp *t, const char *send, char *buf, size_t cap) {
    CHECK(sockflow_tcp_send_msg(t, send, strlen(send)) == 0, "send_msg %s", send);
    ssize_t n = sockflow_tcp_recv_msg(t, buf, cap);
    CHECK(n >= 0, "recv_msg after %s: %zd", send, n);
    if (n < 0) buf[0] = 0;
}

int main(void) {
    sockflow_args a;
    sockflow_server_config cfg;
    loopback_server(&a, &cfg);
    sockflow_handler h = {NULL, on_message, NULL, 0};
    sockflow_server *s = NULL;
    if (sockflow_tcp_server_new(&a, &cfg, h, NULL, &s) != 0) return sockflow_perror("server_new", 1);
    int port = sockflow_server_port(s);
    pthread_t th;
    pthread_create(&th, NULL, run, s);

    sockflow_tcp *ca = NULL, *cb = NULL;
    if (sockflow_tcp_connect("127.0.0.1", port, 10000, &ca) != 0) return sockflow_perror("connect a", 1);
    sockflow_tcp_set_timeouts(ca, 20000, 20000);
    char buf[512];
    exchange(ca, "a", buf, sizeof buf);
    CHECK(strcmp(buf, "first") == 0, "client a got \"%s\"", buf);
    for (int i = 0; i < 3; i++) CHECK(wrap_rc[i] == SOCKFLOW_EINVAL, "wrapping length %d: %d", i, wrap_rc[i]);

    if (sockflow_tcp_connect("127.0.0.1", port, 10000, &cb) != 0) return sockflow_perror("connect b", 1);
    sockflow_tcp_set_timeouts(cb, 20000, 20000);
    exchange(cb, "b", buf, sizeof buf);
    char want[256];
    snprintf(want, sizeof want, "send=%d id=0 code=%d thread=%d msg=b", SOCKFLOW_EBADHANDLE, SOCKFLOW_EBADHANDLE,
             SOCKFLOW_EBADHANDLE);
    CHECK(strcmp(buf, want) == 0, "client b got \"%s\", want \"%s\"", buf, want);
    CHECK(strstr(stale_msg, "stale") != NULL, "stale handle message: \"%s\"", stale_msg);
    fprintf(stderr, "stale handle message: %s\n", stale_msg);

    /* Outside any callback (this thread runs none) and garbage pointers. */
    CHECK(sockflow_conn_send_str(kept, "x") == SOCKFLOW_EBADHANDLE, "kept handle outside a callback");
    CHECK(sockflow_conn_id((const sockflow_conn *)(uintptr_t)0x1000) == 0 &&
              sockflow_last_error_code() == SOCKFLOW_EBADHANDLE,
          "garbage pointer id");
    CHECK(sockflow_conn_set_user((sockflow_conn *)(uintptr_t)0x12345678, NULL) == SOCKFLOW_EBADHANDLE,
          "garbage pointer set_user");
    CHECK(sockflow_conn_user((const sockflow_conn *)buf) == NULL &&
              sockflow_last_error_code() == SOCKFLOW_EBADHANDLE,
          "stack pointer user");

    /* Nothing leaked to either client: the next message each gets is its own reply. */
    exchange(ca, "a2", buf, sizeof buf);
    CHECK(strncmp(buf, "send=", 5) == 0 && strstr(buf, "msg=a2") != NULL, "client a then got \"%s\"", buf);
    exchange(cb, "b2", buf, sizeof buf);
    CHECK(strncmp(buf, "send=", 5) == 0 && strstr(buf, "msg=b2") != NULL, "client b then got \"%s\"", buf);

    sockflow_tcp_close(ca);
    sockflow_tcp_close(cb);
    sockflow_server_stop(s);
    void *rc;
    pthread_join(th, &rc);
    CHECK(*(int *)rc == 0, "run returned %d", *(int *)rc);
    sockflow_server_close(s);
    return checks_done();
}
