/* A handler reads a local client's credentials with sockflow_conn_peer_cred
 * (server on an abstract unix: name, client in this process: its own pid,
 * uid and gid come back); the client reads the server's with
 * sockflow_tcp_peer_cred. Prints "OK" and exits 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sockflow.h>
#include "check.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int on_connect(void *ud, sockflow_conn *c) {
    int pid = -1;
    unsigned uid = 0, gid = 0;
    char reply[96];
    (void)ud;
    if (sockflow_conn_peer_cred(c, &pid, &uid, &gid) != 0) return SOCKFLOW_ACTION_CLOSE;
    snprintf(reply, sizeof reply, "%d %u %u", pid, uid, gid);
    return sockflow_conn_send_str(c, reply) == 0 ? SOCKFLOW_ACTION_CONTINUE : SOCKFLOW_ACTION_CLOSE;
}

static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len) {
    (void)ud, (void)c, (void)msg, (void)len;
    return SOCKFLOW_ACTION_CONTINUE;
}

static void *run(void *s) {
    static int rc;
    rc = sockflow_server_run((sockflow_server *)s);
    return &rc;
}

int main(void) {
    char host[96], want[96], buf[96];
    sockflow_args a;
    sockflow_server_config cfg;
    loopback_server(&a, &cfg);
    snprintf(host, sizeof host, "unix:@sockflow-peer-cred-%d", (int)getpid());
    CHECK(sockflow_args_init(&a, SOCKFLOW_ROLE_SERVER, host, 0) == 0, "args_init %s", host);
    sockflow_handler h = {on_connect, on_message, NULL, 0};
    sockflow_server *s = NULL;
    if (sockflow_tcp_server_new(&a, &cfg, h, NULL, &s) != 0) return sockflow_perror("server_new", 1);
    pthread_t th;
    pthread_create(&th, NULL, run, s);

    sockflow_tcp *t = NULL;
    if (sockflow_tcp_connect(host, 0, 10000, &t) != 0) return sockflow_perror("connect", 1);
    sockflow_tcp_set_timeouts(t, 20000, 20000);
    snprintf(want, sizeof want, "%d %u %u", (int)getpid(), (unsigned)getuid(), (unsigned)getgid());
    CHECK(sockflow_tcp_recv_msg(t, buf, sizeof buf) > 0 && strcmp(buf, want) == 0, "credentials \"%s\", want \"%s\"", buf, want);
    int pid = -1;
    CHECK(sockflow_tcp_peer_cred(t, &pid, NULL, NULL) == 0 && pid == (int)getpid(), "the server's pid %d", pid);
    sockflow_addr peer;
    CHECK(sockflow_tcp_peer(t, &peer) == 0 && peer.family == 0 && strcmp(peer.ip, "unix") == 0 && peer.port == 0, "peer %s", peer.ip);
    sockflow_tcp_close(t);

    sockflow_server_stop(s);
    pthread_join(th, NULL);
    sockflow_server_close(s);
    return checks_done();
}
