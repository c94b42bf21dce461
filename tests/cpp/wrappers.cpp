// sockflow.hpp's wrappers, on loopback (tests/cpp.rs builds and runs it,
// with g++ and clang++, C++17 and C++20, and under ASan/UBSan): errors as
// exceptions and as std::error_code, the primitives' RAII handles and
// messages, a server's controls and timers, a client loop with an outgoing
// connection that fails. Prints OK and exits 0 when every check holds;
// every wait is bounded by a socket timeout.
#include <sockflow.hpp>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

static int failures;
#define CHECK(cond)                                                                                                            \
    do {                                                                                                                       \
        if (!(cond)) {                                                                                                         \
            std::fprintf(stderr, "FAIL line %d: %s (last error: %s)\n", __LINE__, #cond, sockflow::last_error().c_str());    \
            failures++;                                                                                                        \
        }                                                                                                                      \
    } while (0)

/// The code of the `sockflow::error` that `f` throws, 0 if none.
template <class F> static int code_of(F f)
{
    try {
        f();
    } catch (const sockflow::error &e) {
        return e.code();
    }
    return 0;
}

static sockflow::args loopback() { return sockflow::args(SOCKFLOW_ROLE_SERVER, "127.0.0.1", 0); }

static sockflow::config quiet()
{
    sockflow::config c;
    c.quiet = 1;
    return c;
}

/// A port nobody listens on (a listener's, closed on return).
static int closed_port() { return sockflow::tcp_listener::listen("127.0.0.1", 0).port(); }

static void errors()
{
    int port = closed_port();
    try {
        sockflow::tcp_stream::connect("127.0.0.1", port, 10s);
        CHECK(false);
    } catch (const sockflow::error &e) {
        CHECK(e.code() == SOCKFLOW_ECONNREFUSED);
        CHECK(std::string(e.what()).find("Connection refused") != std::string::npos);
        CHECK(!e.reported());
    }
    std::error_code ec;
    auto t = sockflow::tcp_stream::connect("127.0.0.1", port, 10s, ec);
    CHECK(!t);
    CHECK(ec.value() == SOCKFLOW_ECONNREFUSED && ec.category() == sockflow::category());
    CHECK(ec == std::errc::connection_refused);
    CHECK(ec.message() == sockflow_strerror(SOCKFLOW_ECONNREFUSED));
    CHECK(sockflow::last_error().find("Connection refused") != std::string::npos);
    CHECK(code_of([&] { sockflow::tcp_stream::connect("127.0.0.1", port, 0ms); }) == SOCKFLOW_EINVAL);

    char a0[] = "prog", a1[] = "80a";
    char *argv[] = {a0, a1, nullptr};
    try {
        sockflow::args::parse(2, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_QUIET);
        CHECK(false);
    } catch (const sockflow::error &e) {
        CHECK(e.code() == SOCKFLOW_EUSAGE && !e.reported());
        CHECK(std::string(e.what()).find("80a") != std::string::npos);
    }
    char b0[] = "prog", b1[] = "--interval", b2[] = "250", b3[] = "7";
    char *bv[] = {b0, b1, b2, b3, nullptr};
    int bc = 4;
    CHECK(sockflow::args::take_int(bc, bv, "--interval", 1000) == 250);
    CHECK(bc == 2 && std::string(bv[1]) == "7");
    auto a = sockflow::args::parse(bc, bv, SOCKFLOW_ROLE_SERVER);
    CHECK(a.port == 7 && std::string(a.prog) == "prog" && std::string(a.quit) == "quit");
    CHECK(code_of([&] { a.set_frame("nonsense"); }) == SOCKFLOW_EINVAL);

    CHECK(sockflow::run_main(0, nullptr, [] {}) == 0);
    CHECK(sockflow::run_main(0, nullptr, [] { return SOCKFLOW_EHELP; }) == 0);
    CHECK(sockflow::run_main(0, nullptr, [] { throw sockflow::error(SOCKFLOW_EUSAGE, "printed already", true); }) == 2);
    CHECK(std::string(sockflow::version()) == SOCKFLOW_VERSION);
}

static void tcp()
{
    auto l = sockflow::tcp_listener::listen("127.0.0.1", 0);
    CHECK(l.port() > 0 && l.fd() >= 0);
    std::error_code ec;
    auto none = l.accept(0ms, nullptr, ec);
    CHECK(!none && ec == std::errc::timed_out);
    auto c = sockflow::tcp_stream::connect("127.0.0.1", l.port(), 10s);
    sockflow_addr peer;
    auto s = l.accept(10s, &peer);
    CHECK(s && std::string(peer.ip) == "127.0.0.1");
    s.set_timeouts(10s, 10s);
    c.set_timeouts(10s, 10s);
    CHECK(c.peer().port == l.port());

    c.send_msg("one");
    c.send_msg("");
    c.send("two\nthr");
    c.send("ee\n");
    CHECK(code_of([&] { c.send_msg(std::string(100000, 'x')); }) == SOCKFLOW_EMSGSIZE); // the line frame's limit
    CHECK(code_of([&] { c.send_msg("a\nb"); }) == SOCKFLOW_EINVAL);
    CHECK(s.recv_msg() == "one");
    CHECK(s.recv_msg() == "");
    CHECK(s.recv_msg() == "two");
    CHECK(s.recv_msg() == "three");
    std::string long_msg(60000, 'y');
    c.send_msg(long_msg);
    CHECK(s.recv_msg() == long_msg);

    sockflow::tcp_stream moved = std::move(c); // the handle goes along; the old one is empty
    CHECK(!c && moved);
    moved.send_msg("bye");
    moved.close();
    CHECK(!moved);
    CHECK(s.recv_msg() == "bye");
    CHECK(!s.recv_msg()); // end of stream
    auto r = s.recv_msg(ec);
    CHECK(!r && !ec);
    char buf[8];
    CHECK(s.recv(buf, sizeof buf) == 0);
    sockflow_tcp *raw = s.release();
    CHECK(raw && !s);
    sockflow_tcp_close(raw);
}

static void udp()
{
    auto srv = sockflow::udp_socket::bind("127.0.0.1", 0);
    srv.set_timeouts(10s, sockflow::forever);
    auto cli = sockflow::udp_socket::connect("127.0.0.1", srv.port());
    cli.set_timeouts(10s, sockflow::forever);
    cli.send("ping");
    cli.send("");
    sockflow_addr from;
    CHECK(srv.recv_from(&from) == "ping");
    CHECK(from.port == cli.port());
    CHECK(srv.recv_from().empty());
    srv.send_to("pong", "127.0.0.1", cli.port());
    CHECK(cli.recv_from() == "pong");
    std::string big(65507, 'z'); // the largest IPv4 datagram
    cli.send(big);
    CHECK(srv.recv_from() == big);
    std::error_code ec;
    srv.set_timeouts(50ms, sockflow::forever);
    CHECK(srv.recv_from(nullptr, ec).empty() && ec == std::errc::timed_out);
}

static void server_controls()
{
    std::atomic<std::uint64_t> last_id{0};
    std::atomic<int> handler_closes{0}, ticks{0}, cancelled_calls{0};
    sockflow::handler h;
    h.on_connect = [&](sockflow::conn &c) {
        last_id = c.id();
        c.send("hi");
    };
    h.on_message = [&](sockflow::conn &c, std::string_view msg) {
        if (msg == "count")
            return c.send(std::to_string(c.server().conn_count()));
        if (msg == "stop")
            return c.stop_server();
        c.send(std::string(msg) + "!");
    };
    h.on_close = [&](sockflow::conn &, sockflow::close_reason r) { handler_closes += r == SOCKFLOW_CLOSE_REASON_HANDLER; };
    auto s = sockflow::server::tcp(loopback(), h, quiet());
    // Cancelled before the server runs: it can never fire.
    s.cancel_timer(s.add_timer(0ms, 1ms, [&] { cancelled_calls++; }));
    sockflow::server moved = std::move(s);
    CHECK(!s && moved);
    moved.start();

    auto c = sockflow::tcp_stream::connect("127.0.0.1", moved.port(), 10s);
    c.set_timeouts(10s, 10s);
    CHECK(c.recv_msg() == "hi");
    c.send_msg("x");
    CHECK(c.recv_msg() == "x!"); // on_connect has returned: last_id is set
    std::uint64_t id = last_id;
    CHECK(moved.conn_count() == 1);
    CHECK(moved.conn_ids() == std::vector<std::uint64_t>{id});
    auto p = moved.peer(id);
    CHECK(p && std::string(p->ip) == "127.0.0.1");
    CHECK(!moved.peer(~id));
    c.send_msg("count");
    CHECK(c.recv_msg() == "1");
    moved.send_to(id, "pushed");
    CHECK(c.recv_msg() == "pushed");
    moved.broadcast("all");
    CHECK(c.recv_msg() == "all");

    moved.add_timer(0ms, 0ms, [&] { moved.send_to(id, "once"); });
    CHECK(c.recv_msg() == "once");
    moved.add_timer(1ms, 1ms, [&]() -> sockflow_action {
        moved.send_to(id, "tick");
        return ++ticks == 3 ? SOCKFLOW_ACTION_CLOSE : SOCKFLOW_ACTION_CONTINUE;
    });
    for (int i = 0; i < 3; i++)
        CHECK(c.recv_msg() == "tick");
    moved.set_idle_timeout(id, sockflow::forever);
    moved.close_id(id);
    CHECK(!c.recv_msg());

    auto c2 = sockflow::tcp_stream::connect("127.0.0.1", moved.port(), 10s);
    c2.set_timeouts(10s, 10s);
    CHECK(c2.recv_msg() == "hi");
    c2.send_msg("stop");
    moved.join();
    CHECK(handler_closes == 1 && ticks == 3 && cancelled_calls == 0);
}

static void client_loop()
{
    sockflow::config per_thread = quiet();
    per_thread.mode = SOCKFLOW_MODE_THREAD_PER_CONNECTION;
    auto echo = sockflow::server::tcp(loopback(), [](sockflow::conn &c, std::string_view m) { c.send(m); }, per_thread);
    echo.start();
    int refused = closed_port();
    std::string got;
    int failed = 0, closed = 0, echoed = 0;
    sockflow::handler h;
    h.on_connect = [](sockflow::conn &c) { c.send("from the loop"); };
    h.on_message = [&](sockflow::conn &c, std::string_view m) {
        got = m;
        echoed++;
        c.close();
    };
    h.on_close = [&](sockflow::conn &c, sockflow::close_reason r) {
        if (r == SOCKFLOW_CLOSE_REASON_CONNECT_FAILED)
            failed = c.connect_error();
        if (++closed == 3)
            c.stop_server();
    };
    auto loop = sockflow::server::client_loop(h, quiet());
    CHECK(loop.port() == 0);
    loop.connect("127.0.0.1", echo.port(), 10s);
    loop.connect("127.0.0.1", refused, 10s);
    // The same destination from client arguments (connect_args).
    std::string port = std::to_string(echo.port());
    char prog[] = "wrappers", host[] = "127.0.0.1";
    char *argv[] = {prog, host, port.data(), nullptr};
    sockflow_args a;
    CHECK(sockflow_args_parse(&a, 3, argv, SOCKFLOW_ROLE_CLIENT) == 0);
    loop.connect(a);
    loop.run();
    CHECK(got == "from the loop");
    CHECK(echoed == 2);
    CHECK(failed == SOCKFLOW_ECONNREFUSED);
    CHECK(code_of([&] { loop.run(); }) == SOCKFLOW_EBADHANDLE); // a server runs once
}

/// Sets a flag when the handler holding it is destroyed.
struct destroy_flag {
    std::atomic<bool> *flag;
    explicit destroy_flag(std::atomic<bool> *f) : flag(f) {}
    destroy_flag(const destroy_flag &o) : flag(o.flag) {}
    ~destroy_flag()
    {
        if (flag)
            *flag = true; // a copy going away sets it too: only the last one counts below
    }
};

/// Waits (bounded) until `flag` is true.
static bool wait_for(const std::atomic<bool> &flag)
{
    for (int i = 0; i < 2000 && !flag; i++)
        std::this_thread::sleep_for(10ms);
    return flag;
}

/// Thread per connection: a callback still running when its `server` is
/// destroyed (sockflow gives up waiting for it after 2 s) keeps the
/// handler alive until it returns, then frees it.
static void callback_outlives_server()
{
    static std::atomic<bool> entered{false}, go_on{false}, returned{false}, destroyed{false};
    sockflow::config cfg = quiet();
    cfg.mode = SOCKFLOW_MODE_THREAD_PER_CONNECTION;
    std::uint64_t user_value = 7;
    {
        sockflow::handler h;
        h.on_connect = [&](sockflow::conn &c) { c.set_user(&user_value); };
        h.on_message = [d = destroy_flag(&destroyed)](sockflow::conn &c, std::string_view) {
            CHECK(c.user<std::uint64_t>() != nullptr && *c.user<std::uint64_t>() == 7);
            entered = true;
            wait_for(go_on);
            CHECK(d.flag != nullptr); // the handler (and this capture) is still alive
            returned = true;
        };
        auto s = sockflow::server::tcp(loopback(), h, cfg);
        h = sockflow::handler(); // only the server's copy is left
        destroyed = false;
        s.start();
        auto c = sockflow::tcp_stream::connect("127.0.0.1", s.port(), 10s);
        c.send_msg("block");
        CHECK(wait_for(entered));
        s.close(); // returns once sockflow stops waiting for the callback
        CHECK(!returned && !destroyed);
    }
    go_on = true;
    CHECK(wait_for(destroyed) && returned);
}

int main()
{
    errors();
    tcp();
    udp();
    server_controls();
    client_loop();
    callback_outlives_server();
    if (failures)
        return 1;
    std::puts("OK");
    return 0;
}
