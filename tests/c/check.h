/* What the C test programs of tests/c/ share: CHECK, which counts a failed
 * condition (with its line and the last sockflow error) and goes on, so one
 * run reports every failure, and checks_done for main's status; and the
 * quiet loopback server they start. */
#ifndef SOCKFLOW_TEST_CHECK_H
#define SOCKFLOW_TEST_CHECK_H

#include <sockflow.h>
#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                   \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, " (last error: %d)\n", sockflow_last_error_code()); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* main's exit status: 1 after any failed CHECK, else 0 after printing "OK". */
static inline int checks_done(void) {
    if (failures) return 1;
    puts("OK");
    return 0;
}

/* Arguments for a server on 127.0.0.1, any port, and a config without a log. */
static inline void loopback_server(sockflow_args *a, sockflow_server_config *cfg) {
    sockflow_args_init(a, SOCKFLOW_ROLE_SERVER, "127.0.0.1", 0);
    sockflow_server_config_init(cfg);
    cfg->quiet = 1;
}

#endif
