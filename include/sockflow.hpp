/* sockflow.hpp: the C++17 API of sockflow, header-only, over sockflow.h.
 *
 * Everything the C API does, with C++ ownership, callbacks and errors:
 *
 *   #include <sockflow.hpp>
 *
 *   int main(int argc, char **argv)          // ./echo [options] [host] <port>
 *   {
 *       return sockflow::run_main(argc, argv, [&] {
 *           auto args = sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
 *           sockflow::tcp_server_run(args, [](sockflow::conn &c, std::string_view msg) { c.send(msg); });
 *       });
 *   }
 *
 * Handles. Move-only RAII types, each closed by its one C `_close` in the
 * destructor (or earlier by `close()`): `tcp_stream` (sockflow_tcp),
 * `tcp_listener`, `udp_socket`, and `server` (TCP or UDP server, or a
 * client loop with no listener). A moved-from handle is empty (`!h`).
 * `get()` gives the C pointer for any C call not wrapped here.
 *
 * Plain data. `args` is a `sockflow_args` (fields readable and writable:
 * `args.port`, `args.prog`), made by `args::parse(argc, argv, flags)` or
 * `args(role, host, port)`; `args::take_int` takes a program's own numeric
 * option out of argv first. Every call that takes arguments takes any
 * `sockflow_args`. `config` is a `sockflow_server_config` already
 * filled with the defaults. Addresses are `sockflow_addr` (`a.ip`, `a.port`),
 * enums the C ones (`sockflow_close_reason`, `sockflow_close_mode`, ...).
 * Durations are `std::chrono::milliseconds`; `sockflow::forever` is
 * SOCKFLOW_FOREVER.
 *
 * Servers. A `handler` holds three `std::function`s, any of which may be
 * empty except `on_message` (a lambda taking `(conn &, std::string_view)`
 * converts to a handler on its own):
 *   on_connect(conn &c)                          a client came (or an outgoing connection is up)
 *   on_message(conn &c, std::string_view msg)    one message; `msg` is valid during the call
 *   on_close(conn &c, sockflow_close_reason r)   the connection ended
 * `conn` is a view of the connection, valid only during the callback (keep
 * `c.id()` to reach it later): `send`, `send_to(id, msg)`, `broadcast`,
 * `relay`, `close_id`, `connect` (outgoing), `id`, `peer`, `user`/`set_user`
 * (a per-connection pointer the program owns), `connect_error` (why an outgoing
 * connect failed), `server()` (the controls below). The callback's result
 * is set on it: `c.close()` (send what is queued, then close: reason
 * HANDLER); otherwise the connection goes on. `c.stop_server()` stops
 * the whole server once the callback returns.
 * `server::tcp(args, handler, config)`, `server::udp(...)` and
 * `server::client_loop(handler, config)` make a server; `run()` (this
 * thread), `start()` + `join()` (a thread of its own) or `turn()` with
 * `fd()`/`timeout()` (the program's own loop) run it. Controls, from any
 * thread (also on the `server_ref` that `conn::server()` gives): `stop`,
 * `port`, `send_to`, `broadcast`, `close_id`, `conn_count`, `conn_ids`,
 * `peer(id)`, `set_idle_timeout`, `connect`, `add_timer`/`cancel_timer`
 * (timer callbacks are `std::function`s returning void, or a
 * `sockflow_action` to end a repeating timer). `tcp_server_run(args,
 * handler)` and `udp_server_run` are the one-call servers: SIGINT/SIGTERM
 * stop them gracefully.
 *
 * Exceptions never reach Rust. Every callback is wrapped: an exception
 * thrown by a handler or a timer (the process would otherwise abort: Rust
 * cannot catch foreign exceptions) is caught and logged as
 * `PROG: on_message threw: WHAT (closing connection ID, reason ERROR)`
 * on the config's log (stderr by default; nothing when `quiet`); the
 * connection is then closed at once and gets `on_close` with
 * SOCKFLOW_CLOSE_REASON_ERROR (an exception in `on_close` is only logged,
 * one in a timer cancels that timer). The server serves the others on.
 *
 * Errors. A failed call throws `sockflow::error` (a std::runtime_error):
 * `code()` is the negative SOCKFLOW_E... code, `what()` this thread's last
 * error message (`bind 0.0.0.0:80: Permission denied`). Where a failure is
 * an expected outcome (I/O on streams and sockets: timeouts, EAGAIN,
 * refused connects) there is also an overload taking a trailing
 * `std::error_code &ec` that throws nothing; `ec.value()` is the code,
 * `ec == std::errc::timed_out` works, `sockflow::last_error()` gives the
 * message. End of stream is no error: `recv_msg()` returns std::nullopt
 * and `recv()` 0. `run_main(argc, argv, body)` runs a program's body and
 * turns an escaping exception into `PROG: message` on stderr and the exit
 * status of `sockflow_exit_code` (usage lines and --help are printed by
 * `args::parse` itself).
 *
 * Threads: as in C (README, "Threads"). Callbacks of a server run on its
 * loop thread (or a connection's own thread in
 * SOCKFLOW_MODE_THREAD_PER_CONNECTION); the handler's functions and any
 * state they capture must outlive the `server`. Do not destroy a `server`
 * from one of its own callbacks: call `stop()`.
 */
#ifndef SOCKFLOW_HPP
#define SOCKFLOW_HPP

#include "sockflow.h"

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

/// The C++17 API: RAII handles, `std::function` callbacks and exceptions
/// over the C calls (the comment at the top of sockflow.hpp tells how).
namespace sockflow {

/// No limit, for every duration argument (SOCKFLOW_FOREVER).
inline constexpr std::chrono::milliseconds forever{SOCKFLOW_FOREVER};

/// Why a connection ended, as `on_close` receives it.
using close_reason = ::sockflow_close_reason;

/// This thread's last error message (what failed and why).
inline std::string last_error()
{
    std::string s(sockflow_last_error(nullptr, 0) + 1, '\0');
    s.resize(sockflow_last_error(&s[0], s.size()));
    return s;
}

/// The process exit status for a sockflow code (0, 1, or 2 for usage).
inline int exit_code(int rc) noexcept { return sockflow_exit_code(rc); }

/// The library's version ("0.2.0"); compare with SOCKFLOW_VERSION.
inline const char *version() noexcept { return sockflow_version(); }

/// The `std::error_category` of sockflow codes: `message` is
/// `sockflow_strerror`, and the codes that have a portable meaning compare
/// equal to it (`ec == std::errc::timed_out`).
inline const std::error_category &category() noexcept
{
    struct category_impl : std::error_category {
        const char *name() const noexcept override { return "sockflow"; }
        std::string message(int code) const override { return sockflow_strerror(code); }
        std::error_condition default_error_condition(int code) const noexcept override
        {
            switch (code) {
            case SOCKFLOW_EINVAL: return std::errc::invalid_argument;
            case SOCKFLOW_EADDRINUSE: return std::errc::address_in_use;
            case SOCKFLOW_EACCES: return std::errc::permission_denied;
            case SOCKFLOW_ECONNREFUSED: return std::errc::connection_refused;
            case SOCKFLOW_ETIMEDOUT: return std::errc::timed_out;
            case SOCKFLOW_EMSGSIZE: return std::errc::message_size;
            case SOCKFLOW_EAGAIN: return std::errc::operation_would_block;
            case SOCKFLOW_ECONNRESET: return std::errc::connection_reset;
            case SOCKFLOW_EBUSY: return std::errc::device_or_resource_busy;
            default: return std::error_condition(code, *this);
            }
        }
    };
    static const category_impl c;
    return c;
}

/// A failed sockflow call: the negative SOCKFLOW_E... code and the message.
class error : public std::runtime_error {
public:
    /// An error with `code` (negative SOCKFLOW_E...) and `message`;
    /// `reported` when sockflow printed it already (run_main then does not).
    error(int code, const std::string &message, bool reported = false)
        : std::runtime_error(message), code_(code), reported_(reported) {}
    /// The negative SOCKFLOW_E... code.
    int code() const noexcept { return code_; }
    /// True when sockflow already printed it (a usage line, --help).
    bool reported() const noexcept { return reported_; }

private:
    int code_;
    bool reported_;
};

namespace detail {

/// The error for `code`, with this thread's message when it is about it.
inline error last(int code, bool reported = false)
{
    return error(code, sockflow_last_error_code() == code ? last_error() : sockflow_strerror(code), reported);
}

/// `rc`, or throws for a negative one.
template <class T> T check(T rc)
{
    if (rc < 0)
        throw last(static_cast<int>(rc));
    return rc;
}

/// `rc`, with `ec` set to it when negative and cleared otherwise.
template <class T> T check(T rc, std::error_code &ec) noexcept
{
    ec = rc < 0 ? std::error_code(static_cast<int>(rc), category()) : std::error_code();
    return rc;
}

/// A duration as the C `int` milliseconds (negative = SOCKFLOW_FOREVER).
inline int ms(std::chrono::milliseconds d) noexcept
{
    return d.count() < 0 ? SOCKFLOW_FOREVER : d.count() > INT_MAX ? INT_MAX : static_cast<int>(d.count());
}

/// A pointer C accepts for `sv` (never NULL, even for an empty view).
inline const char *data(std::string_view sv) noexcept { return sv.data() ? sv.data() : ""; }

/// Calls the C `Close` on a handle: the deleter of the RAII types.
template <auto Close> struct closer {
    template <class T> void operator()(T *p) const noexcept { Close(p); }
};

struct state;

} // namespace detail

/// A parsed command line: a `sockflow_args` whose fields stay plain data.
struct args : sockflow_args {
    /// For a program that does not parse argv (`host` nullptr = 0.0.0.0).
    args(int role, const char *host, int port) : sockflow_args() { detail::check(sockflow_args_init(this, role, host, port)); }

    /// `sockflow_args_parse`: throws `error` (EUSAGE, EHELP, ...), already
    /// printed unless `flags` has SOCKFLOW_ARGS_QUIET.
    static args parse(int argc, char *const *argv, int flags)
    {
        args a;
        if (int rc = sockflow_args_parse(&a, argc, argv, flags))
            throw detail::last(rc, !(flags & SOCKFLOW_ARGS_QUIET) && rc != SOCKFLOW_EINVAL);
        return a;
    }

    /// `sockflow_args_take_int`: removes `NAME VALUE` from argv and returns
    /// VALUE, or `default_value`; throws `error` (EUSAGE, printed).
    static int take_int(int &argc, char **argv, const char *name, int default_value)
    {
        int v = default_value;
        if (int rc = sockflow_args_take_int(&argc, argv, name, default_value, &v))
            throw detail::last(rc, rc == SOCKFLOW_EUSAGE);
        return v;
    }

    /// Sets the frame as `--frame` does ("line", "raw", "fixed:32", "len32").
    args &set_frame(const char *spec)
    {
        detail::check(sockflow_args_set_frame(this, spec));
        return *this;
    }

private:
    args() : sockflow_args() {}
};

/// Server settings: a `sockflow_server_config` holding the defaults.
struct config : sockflow_server_config {
    config() : sockflow_server_config() { sockflow_server_config_init(this); }
};

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

/// A connected TCP stream with a message frame (sockflow_tcp).
class tcp_stream {
public:
    /// An empty stream (`!s`).
    tcp_stream() = default;
    /// Takes ownership of a C handle (closed by sockflow_tcp_close).
    explicit tcp_stream(sockflow_tcp *t) noexcept : h_(t) {}

    /// `sockflow_tcp_connect`: connects to `host`:`port`, each attempt
    /// bounded by `timeout`; throws `error` (ECONNREFUSED, ETIMEDOUT, ERESOLVE, ...).
    static tcp_stream connect(const std::string &host, int port, std::chrono::milliseconds timeout = forever)
    {
        sockflow_tcp *t = nullptr;
        detail::check(sockflow_tcp_connect(host.c_str(), port, detail::ms(timeout), &t));
        return tcp_stream(t);
    }
    /// As above, but a failure sets `ec` and returns an empty stream.
    static tcp_stream connect(const std::string &host, int port, std::chrono::milliseconds timeout, std::error_code &ec) noexcept
    {
        sockflow_tcp *t = nullptr;
        detail::check(sockflow_tcp_connect(host.c_str(), port, detail::ms(timeout), &t), ec);
        return tcp_stream(t);
    }
    /// `sockflow_tcp_connect_args`: connects to the host, port, timeout and
    /// frame of `a`; throws `error`.
    static tcp_stream connect(const sockflow_args &a)
    {
        sockflow_tcp *t = nullptr;
        detail::check(sockflow_tcp_connect_args(&a, &t));
        return tcp_stream(t);
    }

    /// `sockflow_tcp_send`: sends all of `data` as it is (no frame);
    /// throws `error` (ECLOSED or ECONNRESET for a closed peer, ETIMEDOUT, ...).
    void send(std::string_view data) { detail::check(sockflow_tcp_send(get(), detail::data(data), data.size())); }
    /// As above, but a failure sets `ec` instead of throwing.
    void send(std::string_view data, std::error_code &ec) noexcept { detail::check(sockflow_tcp_send(get(), detail::data(data), data.size()), ec); }
    /// `sockflow_tcp_send_msg`: sends one message through the frame (a line
    /// gets its `\n`); throws `error` (EMSGSIZE when it does not fit the
    /// frame, EINVAL for a newline in a line: nothing is sent then).
    void send_msg(std::string_view msg) { detail::check(sockflow_tcp_send_msg(get(), detail::data(msg), msg.size())); }
    /// As above, but a failure sets `ec` instead of throwing.
    void send_msg(std::string_view msg, std::error_code &ec) noexcept { detail::check(sockflow_tcp_send_msg(get(), detail::data(msg), msg.size()), ec); }

    /// `sockflow_tcp_recv`: one read of up to `cap` bytes into `buf`, as they
    /// came (no frame): the byte count, 0 at end of stream; throws `error`.
    std::size_t recv(void *buf, std::size_t cap)
    {
        ssize_t n = sockflow_tcp_recv(get(), buf, cap);
        return n == SOCKFLOW_ECLOSED ? 0 : static_cast<std::size_t>(detail::check(n));
    }
    /// As above, but a failure sets `ec` and returns 0 (end of stream
    /// returns 0 with `ec` clear).
    std::size_t recv(void *buf, std::size_t cap, std::error_code &ec) noexcept
    {
        ssize_t n = detail::check(sockflow_tcp_recv(get(), buf, cap), ec);
        if (n == SOCKFLOW_ECLOSED)
            ec.clear();
        return n < 0 ? 0 : static_cast<std::size_t>(n);
    }

    /// `sockflow_tcp_recv_msg`: the next whole message, of any length the
    /// frame allows, without its delimiter; std::nullopt at end of stream;
    /// throws `error` (ETIMEDOUT after the receive timeout, ...).
    std::optional<std::string> recv_msg()
    {
        std::error_code ec;
        auto m = recv_msg(ec);
        if (ec)
            throw detail::last(ec.value());
        return m;
    }
    /// As `recv_msg()`, but an error sets `ec` (and returns std::nullopt)
    /// instead of throwing; only std::bad_alloc can escape.
    std::optional<std::string> recv_msg(std::error_code &ec)
    {
        for (;;) {
            ssize_t n = sockflow_tcp_recv_msg(get(), nullptr, 0); // waits, then gives the length
            if (n >= 0) {
                std::string m(static_cast<std::size_t>(n) + 1, '\0');
                n = sockflow_tcp_recv_msg(get(), &m[0], m.size());
                if (n == SOCKFLOW_EMSGSIZE)
                    continue; // cannot happen with one receiver; ask again
                if (n >= 0) {
                    ec.clear();
                    m.resize(static_cast<std::size_t>(n));
                    return m;
                }
            }
            if (n == SOCKFLOW_ECLOSED)
                ec.clear();
            else
                detail::check(n, ec);
            return std::nullopt;
        }
    }

    /// `sockflow_tcp_flush`: sends what a non-blocking send kept in the
    /// handle; throws `error` (EAGAIN or ETIMEDOUT while some is still kept).
    void flush() { detail::check(sockflow_tcp_flush(get())); }
    /// As above, but a failure sets `ec` instead of throwing.
    void flush(std::error_code &ec) noexcept { detail::check(sockflow_tcp_flush(get()), ec); }
    /// `sockflow_tcp_shutdown`: half-closes (the peer sees end of stream;
    /// receiving goes on); throws `error` (EAGAIN while kept bytes cannot go out).
    void shutdown() { detail::check(sockflow_tcp_shutdown(get())); }

    /// `sockflow_tcp_set_frame`: the frame of `send_msg`/`recv_msg` from now
    /// on ("line", "raw", "fixed:32", "len32", as `--frame`); bytes already
    /// buffered are dropped. Throws `error` (EINVAL).
    void set_frame(const char *spec) { detail::check(sockflow_tcp_set_frame(get(), spec)); }
    /// `sockflow_tcp_set_timeouts`: how long each receive and send may wait
    /// (`forever` = no limit; 0 is EINVAL); throws `error`.
    void set_timeouts(std::chrono::milliseconds recv, std::chrono::milliseconds send)
    {
        detail::check(sockflow_tcp_set_timeouts(get(), detail::ms(recv), detail::ms(send)));
    }
    /// `sockflow_tcp_peer`: the peer's address; throws `error`.
    sockflow_addr peer() const
    {
        sockflow_addr a;
        detail::check(sockflow_tcp_peer(get(), &a));
        return a;
    }
    /// `sockflow_tcp_fd`: the socket's descriptor, still owned by the stream
    /// (for poll; do not close it); throws `error`.
    int fd() const { return detail::check(sockflow_tcp_fd(get())); }

    /// The C handle, still owned by the stream (nullptr when empty).
    sockflow_tcp *get() const noexcept { return h_.get(); }
    /// Gives up the C handle: the caller closes it (sockflow_tcp_close).
    sockflow_tcp *release() noexcept { return h_.release(); }
    /// Closes now (sockflow_tcp_close); the stream is then empty.
    void close() noexcept { h_.reset(); }
    /// True unless empty (default-made, moved from, closed or released).
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    std::unique_ptr<sockflow_tcp, detail::closer<sockflow_tcp_close>> h_;
};

/// A listening TCP socket (sockflow_tcp_listener).
class tcp_listener {
public:
    /// An empty listener (`!l`).
    tcp_listener() = default;
    /// Takes ownership of a C handle (closed by sockflow_tcp_listener_close).
    explicit tcp_listener(sockflow_tcp_listener *l) noexcept : h_(l) {}

    /// `sockflow_tcp_listen`: listens on `host`:`port` (port 0 = any free
    /// port; `backlog` <= 0 = 128); throws `error` (EADDRINUSE, EACCES, ...).
    static tcp_listener listen(const std::string &host, int port, int backlog = 0)
    {
        sockflow_tcp_listener *l = nullptr;
        detail::check(sockflow_tcp_listen(host.c_str(), port, backlog, &l));
        return tcp_listener(l);
    }
    /// `sockflow_tcp_listen_args`: listens on the host and port of `a`
    /// (accepted streams get its frame); throws `error`.
    static tcp_listener listen(const sockflow_args &a)
    {
        sockflow_tcp_listener *l = nullptr;
        detail::check(sockflow_tcp_listen_args(&a, &l));
        return tcp_listener(l);
    }

    /// `sockflow_tcp_accept`: the next client, waiting up to `timeout`; its
    /// address goes to `*peer` when given. Throws `error` (ETIMEDOUT when
    /// none came).
    tcp_stream accept(std::chrono::milliseconds timeout = forever, sockflow_addr *peer = nullptr) const
    {
        sockflow_tcp *t = nullptr;
        detail::check(sockflow_tcp_accept(get(), detail::ms(timeout), &t, peer));
        return tcp_stream(t);
    }
    /// As above, but a failure sets `ec` and returns an empty stream.
    tcp_stream accept(std::chrono::milliseconds timeout, sockflow_addr *peer, std::error_code &ec) const noexcept
    {
        sockflow_tcp *t = nullptr;
        detail::check(sockflow_tcp_accept(get(), detail::ms(timeout), &t, peer), ec);
        return tcp_stream(t);
    }

    /// `sockflow_tcp_listener_port`: the bound port (the one picked for
    /// port 0); throws `error`.
    int port() const { return detail::check(sockflow_tcp_listener_port(get())); }
    /// `sockflow_tcp_listener_fd`: the listening descriptor, still owned by
    /// the listener (for poll); throws `error`.
    int fd() const { return detail::check(sockflow_tcp_listener_fd(get())); }

    /// The C handle, still owned by the listener (nullptr when empty).
    sockflow_tcp_listener *get() const noexcept { return h_.get(); }
    /// Gives up the C handle: the caller closes it (sockflow_tcp_listener_close).
    sockflow_tcp_listener *release() noexcept { return h_.release(); }
    /// Closes now (sockflow_tcp_listener_close); the listener is then empty.
    void close() noexcept { h_.reset(); }
    /// True unless empty (default-made, moved from, closed or released).
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    std::unique_ptr<sockflow_tcp_listener, detail::closer<sockflow_tcp_listener_close>> h_;
};

/// A UDP socket (sockflow_udp).
class udp_socket {
public:
    /// An empty socket (`!u`).
    udp_socket() = default;
    /// Takes ownership of a C handle (closed by sockflow_udp_close).
    explicit udp_socket(sockflow_udp *u) noexcept : h_(u) {}

    /// `sockflow_udp_bind`: binds `host`:`port` (port 0 = any free port);
    /// throws `error` (EADDRINUSE, EACCES, ...).
    static udp_socket bind(const std::string &host, int port) { return make(sockflow_udp_bind, host.c_str(), port); }
    /// `sockflow_udp_bind_args`: binds the host and port of `a`, with its
    /// frame; throws `error`.
    static udp_socket bind(const sockflow_args &a) { return make(sockflow_udp_bind_args, &a); }
    /// `sockflow_udp_connect`: a socket on a free port connected to
    /// `host`:`port` (only its datagrams are received); throws `error`.
    static udp_socket connect(const std::string &host, int port) { return make(sockflow_udp_connect, host.c_str(), port); }
    /// `sockflow_udp_connect_args`: a socket connected to the host and port
    /// of `a`, with its frame; throws `error`.
    static udp_socket connect(const sockflow_args &a) { return make(sockflow_udp_connect_args, &a); }

    /// `sockflow_udp_send`: one datagram on a connected socket; throws
    /// `error` (ECONNREFUSED when the peer's port is closed, ...).
    void send(std::string_view msg) { detail::check(sockflow_udp_send(get(), detail::data(msg), msg.size())); }
    /// As above, but a failure sets `ec` instead of throwing.
    void send(std::string_view msg, std::error_code &ec) noexcept { detail::check(sockflow_udp_send(get(), detail::data(msg), msg.size()), ec); }
    /// `sockflow_udp_send_to`: one datagram to `host`:`port`; throws `error`.
    void send_to(std::string_view msg, const std::string &host, int port)
    {
        detail::check(sockflow_udp_send_to(get(), detail::data(msg), msg.size(), host.c_str(), port));
    }

    /// `sockflow_udp_recv_from`: the next datagram (any size), its sender to
    /// `*from` when given; throws `error` (ETIMEDOUT after the receive timeout).
    std::string recv_from(sockflow_addr *from = nullptr)
    {
        std::error_code ec;
        std::string m = recv_from(from, ec);
        if (ec)
            throw detail::last(ec.value());
        return m;
    }
    /// As above, but a failure sets `ec` and returns ""; only std::bad_alloc
    /// can escape.
    std::string recv_from(sockflow_addr *from, std::error_code &ec)
    {
        std::string m(65536, '\0'); // more than any datagram, and room for the NUL
        ssize_t n = detail::check(sockflow_udp_recv_from(get(), &m[0], m.size(), from), ec);
        m.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
        return m;
    }

    /// `sockflow_udp_set_frame`: "fixed:N" pads each datagram sent to N
    /// bytes, "line" drops one trailing newline received, "raw" (the
    /// default) is as is; throws `error` (EINVAL).
    void set_frame(const char *spec) { detail::check(sockflow_udp_set_frame(get(), spec)); }
    /// `sockflow_udp_set_timeouts`: how long each receive and send may wait
    /// (`forever` = no limit; 0 is EINVAL); throws `error`.
    void set_timeouts(std::chrono::milliseconds recv, std::chrono::milliseconds send)
    {
        detail::check(sockflow_udp_set_timeouts(get(), detail::ms(recv), detail::ms(send)));
    }
    /// `sockflow_udp_set_broadcast`: allows (or forbids) sending to broadcast
    /// addresses; throws `error`.
    void set_broadcast(bool on) { detail::check(sockflow_udp_set_broadcast(get(), on ? 1 : 0)); }
    /// `sockflow_udp_join`: joins multicast `group` on `iface` (nullptr = the
    /// default interface; see the C call for its forms); throws `error`.
    void join(const char *group, const char *iface = nullptr) { detail::check(sockflow_udp_join(get(), group, iface)); }
    /// `sockflow_udp_leave`: leaves multicast `group` joined by `join`;
    /// throws `error`.
    void leave(const char *group, const char *iface = nullptr) { detail::check(sockflow_udp_leave(get(), group, iface)); }
    /// `sockflow_udp_port`: the bound port (the one picked for port 0);
    /// throws `error`.
    int port() const { return detail::check(sockflow_udp_port(get())); }
    /// `sockflow_udp_fd`: the socket's descriptor, still owned by the socket
    /// (for poll); throws `error`.
    int fd() const { return detail::check(sockflow_udp_fd(get())); }

    /// The C handle, still owned by the socket (nullptr when empty).
    sockflow_udp *get() const noexcept { return h_.get(); }
    /// Gives up the C handle: the caller closes it (sockflow_udp_close).
    sockflow_udp *release() noexcept { return h_.release(); }
    /// Closes now (sockflow_udp_close); the socket is then empty.
    void close() noexcept { h_.reset(); }
    /// True unless empty (default-made, moved from, closed or released).
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    template <class F, class... A> static udp_socket make(F f, A... a)
    {
        sockflow_udp *u = nullptr;
        detail::check(f(a..., &u));
        return udp_socket(u);
    }
    std::unique_ptr<sockflow_udp, detail::closer<sockflow_udp_close>> h_;
};

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

class server_ref;

/// A connection as a callback sees it; valid only during that callback.
class conn {
public:
    conn(const conn &) = delete;
    conn &operator=(const conn &) = delete;

    /// `sockflow_conn_send`: one message to this connection, queued and
    /// written without blocking (for UDP, a datagram to the sender); throws
    /// `error` (EMSGSIZE if it does not fit the frame, EBADHANDLE in `on_close`).
    void send(std::string_view msg) { detail::check(sockflow_conn_send(c_, detail::data(msg), msg.size())); }
    /// `sockflow_conn_send_to`: one message to connection `id` of the same
    /// server (an id that is gone is ignored); throws `error`.
    void send_to(std::uint64_t id, std::string_view msg) { detail::check(sockflow_conn_send_to(c_, id, detail::data(msg), msg.size())); }
    /// `sockflow_conn_broadcast`: one message to every connection (this one
    /// too if `include_self`); throws `error`.
    void broadcast(std::string_view msg, bool include_self = false)
    {
        detail::check(sockflow_conn_broadcast(c_, detail::data(msg), msg.size(), include_self ? 1 : 0));
    }
    /// `sockflow_conn_relay`: one message to connection `id`, never dropped:
    /// this one is not read while `id` is behind (TCP only); throws `error`.
    void relay(std::uint64_t id, std::string_view msg) { detail::check(sockflow_conn_relay(c_, id, detail::data(msg), msg.size())); }
    /// `sockflow_conn_close_id`: closes connection `id` of the same server
    /// after its queue is sent (reason HANDLER); throws `error`.
    void close_id(std::uint64_t id) { detail::check(sockflow_conn_close_id(c_, id)); }
    /// `sockflow_conn_connect`: opens an outgoing TCP connection from this
    /// loop and returns its id at once; `on_connect` follows, or `on_close`
    /// with CONNECT_FAILED. `user` is its user pointer. Throws `error`.
    std::uint64_t connect(const std::string &host, int port, std::chrono::milliseconds timeout = forever, void *user = nullptr)
    {
        std::uint64_t id = 0;
        detail::check(sockflow_conn_connect(c_, host.c_str(), port, detail::ms(timeout), user, &id));
        return id;
    }
    /// `sockflow_conn_connect_args`: like `connect`, as client arguments say
    /// (host or `unix:PATH`, port, `--timeout`, and TLS with `--tls`,
    /// `--tls-ca`, `--tls-cert`/`--tls-key`). Throws `error`.
    std::uint64_t connect(const sockflow_args &a, void *user = nullptr)
    {
        std::uint64_t id = 0;
        detail::check(sockflow_conn_connect_args(c_, &a, user, &id));
        return id;
    }

    /// `sockflow_conn_id`: the connection's id, unique for the server's life,
    /// never 0.
    std::uint64_t id() const { return sockflow_conn_id(c_); }
    /// `sockflow_conn_peer`: the peer's address (for UDP, the datagram's
    /// sender); throws `error`.
    sockflow_addr peer() const
    {
        sockflow_addr a;
        detail::check(sockflow_conn_peer(c_, &a));
        return a;
    }
    /// `sockflow_conn_error`: in `on_close` with CONNECT_FAILED, why (a
    /// SOCKFLOW_E... code; the message is `last_error()`). 0 elsewhere.
    int connect_error() const { return sockflow_conn_error(c_); }
    /// `sockflow_conn_user`: the per-connection user pointer (nullptr until
    /// set; for UDP it lasts one datagram, or the peer with `udp_peers`).
    void *user() const { return sockflow_conn_user(c_); }
    /// The user pointer as a `T *` (no check that it is one).
    template <class T> T *user() const { return static_cast<T *>(sockflow_conn_user(c_)); }
    /// `sockflow_conn_set_user`: sets the user pointer. sockflow never frees
    /// it: the program does, in `on_close`. Throws `error`.
    void set_user(void *user) { detail::check(sockflow_conn_set_user(c_, user)); }

    /// The callback's result: send what is queued, then close this
    /// connection (reason HANDLER). No effect in `on_close`.
    void close() noexcept { action_ = SOCKFLOW_ACTION_CLOSE; }
    /// `sockflow_conn_stop_server`: stops the whole server gracefully once
    /// this callback returns (from any callback, `on_close` too); throws `error`.
    void stop_server() { detail::check(sockflow_conn_stop_server(c_)); }

    /// The server's controls (see `server_ref`).
    server_ref server() const noexcept;
    /// The C connection, valid only during this callback (for C calls not
    /// wrapped here).
    sockflow_conn *get() const noexcept { return c_; }

private:
    friend struct detail::state;
    conn(sockflow_conn *c, detail::state *st) noexcept : c_(c), st_(st) {}
    sockflow_conn *c_;
    detail::state *st_;
    int action_ = SOCKFLOW_ACTION_CONTINUE;
};

/// A server's callbacks. Any may be empty except `on_message`.
struct handler {
    /// A client came, or an outgoing connection is up (may be empty).
    std::function<void(conn &)> on_connect;
    /// One message; the view is valid only during the call.
    std::function<void(conn &, std::string_view)> on_message;
    /// The connection ended, and why (may be empty).
    std::function<void(conn &, close_reason)> on_close;

    /// No callbacks yet: set `on_message` before making a server.
    handler() = default;
    /// A handler of `on_message` alone.
    template <class F, class = std::enable_if_t<std::is_invocable_v<F &, conn &, std::string_view>>>
    handler(F on_msg) : on_message(std::move(on_msg)) {}
};

namespace detail {

/// A timer's callback, owned by its server's state until the timer ends.
struct timer_entry {
    std::function<int()> fn;
    state *st;
    bool repeats;
    std::atomic<bool> cancelled{false};
    bool done = false; // guarded by state::mu
};

/// What a server's C callbacks get as userdata: the handler, where to log,
/// and the timers. Reference-counted, so that a callback still running
/// on a connection's own thread after the server was closed (thread per
/// connection: see sockflow_mode) keeps it alive until it returns.
struct state {
    handler h;
    std::string prog;
    FILE *log;
    bool quiet;
    sockflow_server *srv = nullptr;
    std::atomic<long> refs{1};
    std::mutex mu;
    std::map<std::uint64_t, std::unique_ptr<timer_entry>> timers;

    state(handler hd, const sockflow_args *a, const sockflow_server_config &cfg)
        : h(std::move(hd)), prog(a ? a->prog : "sockflow"), log(cfg.log ? cfg.log : stderr), quiet(cfg.quiet != 0) {}

    void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    /// The C handler: a trampoline for each function that is set.
    sockflow_handler c_handler() const noexcept
    {
        sockflow_handler c = {nullptr, nullptr, nullptr, SOCKFLOW_BUILTIN_NONE};
        if (h.on_connect)
            c.on_connect = on_connect;
        if (h.on_message)
            c.on_message = on_message;
        if (h.on_close)
            c.on_close = on_close;
        return c;
    }

    /// Where the line about an exception goes: the config's log, or
    /// nowhere when `quiet`. Each such line is written and flushed at once.
    FILE *out() const noexcept { return quiet ? nullptr : log; }

    /// Runs `f(handler, conn)` for a C callback and returns the result it set
    /// on the conn; for an exception, logs it and returns
    /// SOCKFLOW_ACTION_ABORT (the connection closes at once, reason ERROR).
    template <class F> static int guarded(void *ud, sockflow_conn *c, const char *where, F &&f) noexcept
    {
        auto *st = static_cast<state *>(ud);
        st->retain();
        int r = SOCKFLOW_ACTION_ABORT;
        const char *what = "an exception not derived from std::exception";
        try {
            conn cv(c, st);
            f(st->h, cv);
            r = cv.action_;
        } catch (const std::exception &e) {
            what = e.what();
            st->log_exception(where, what, c);
        } catch (...) {
            st->log_exception(where, what, c);
        }
        st->release();
        return r;
    }

    void log_exception(const char *where, const char *what, sockflow_conn *c) const noexcept
    {
        if (FILE *f = out()) {
            auto id = static_cast<unsigned long long>(sockflow_conn_id(c));
            if (std::strcmp(where, "on_close") == 0)
                std::fprintf(f, "%s: on_close threw: %s (connection %llu)\n", prog.c_str(), what, id);
            else
                std::fprintf(f, "%s: %s threw: %s (closing connection %llu, reason ERROR)\n", prog.c_str(), where, what, id);
            std::fflush(f);
        }
    }

    static int on_connect(void *ud, sockflow_conn *c) noexcept
    {
        return guarded(ud, c, "on_connect", [](handler &h, conn &cv) { h.on_connect(cv); });
    }
    static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len) noexcept
    {
        return guarded(ud, c, "on_message", [&](handler &h, conn &cv) { h.on_message(cv, std::string_view(msg, len)); });
    }
    static void on_close(void *ud, sockflow_conn *c, int reason) noexcept
    {
        guarded(ud, c, "on_close", [=](handler &h, conn &cv) { h.on_close(cv, static_cast<close_reason>(reason)); });
    }

    /// A timer fired: its function unless cancelled (then CLOSE ends it in
    /// C too); its entry is freed once C will not call it again.
    static int on_timer(void *ud, sockflow_server *, std::uint64_t id) noexcept
    {
        auto *e = static_cast<timer_entry *>(ud);
        int r = SOCKFLOW_ACTION_CLOSE;
        if (!e->cancelled.load()) {
            try {
                r = e->fn();
            } catch (const std::exception &ex) {
                e->st->log_timer_exception(id, ex.what());
                r = SOCKFLOW_ACTION_ABORT;
            } catch (...) {
                e->st->log_timer_exception(id, "an exception not derived from std::exception");
                r = SOCKFLOW_ACTION_ABORT;
            }
        }
        if (!e->repeats || r != SOCKFLOW_ACTION_CONTINUE)
            e->st->timer_done(e, id);
        return r;
    }

    void log_timer_exception(std::uint64_t id, const char *what) const noexcept
    {
        if (FILE *f = out()) {
            std::fprintf(f, "%s: timer %llu threw: %s (timer cancelled)\n", prog.c_str(), static_cast<unsigned long long>(id), what);
            std::fflush(f);
        }
    }

    void timer_done(timer_entry *e, std::uint64_t id) noexcept
    {
        std::lock_guard<std::mutex> g(mu);
        e->done = true; // if not in the map yet, timer_add frees it
        auto it = timers.find(id);
        if (it != timers.end() && it->second.get() == e)
            timers.erase(it);
    }
};

} // namespace detail

/// A server's controls, without owning it: what `conn::server()` gives, and
/// the base of `server`. Safe from any thread and from callbacks.
class server_ref {
public:
    /// `sockflow_server_port`: the bound port (the chosen one for port 0;
    /// 0 for a client loop); throws `error`.
    int port() const { return detail::check(sockflow_server_port(s_)); }
    /// `sockflow_server_stop`: asks the server to stop gracefully; returns
    /// at once. Throws `error`.
    void stop() { detail::check(sockflow_server_stop(s_)); }
    /// `sockflow_server_send_to`: queues one message for connection `id` (an
    /// id that is gone is ignored); throws `error` (EBADHANDLE for a UDP
    /// server without `udp_peers`).
    void send_to(std::uint64_t id, std::string_view msg) { detail::check(sockflow_server_send_to(s_, id, detail::data(msg), msg.size())); }
    /// `sockflow_server_broadcast`: one message to every connection; throws
    /// `error`.
    void broadcast(std::string_view msg) { detail::check(sockflow_server_broadcast(s_, detail::data(msg), msg.size())); }
    /// `sockflow_server_close_id`: closes connection `id` after sending its
    /// queue (SOCKFLOW_CLOSE_MODE_FLUSH) or at once; reason HANDLER. An id
    /// that is gone is ignored; throws `error`.
    void close_id(std::uint64_t id, sockflow_close_mode mode = SOCKFLOW_CLOSE_MODE_FLUSH) { detail::check(sockflow_server_close_id(s_, id, mode)); }
    /// `sockflow_server_conn_count`: how many connections are open; throws
    /// `error`.
    std::size_t conn_count() const { return static_cast<std::size_t>(detail::check(sockflow_server_conn_count(s_))); }
    /// `sockflow_server_conn_ids`: the ids of the open connections, oldest
    /// first (a snapshot); throws `error`.
    std::vector<std::uint64_t> conn_ids() const
    {
        std::vector<std::uint64_t> ids;
        for (;;) {
            auto n = static_cast<std::size_t>(detail::check(sockflow_server_conn_ids(s_, ids.data(), ids.size())));
            if (n <= ids.size()) {
                ids.resize(n);
                return ids;
            }
            ids.resize(n + n / 2 + 1);
        }
    }
    /// `sockflow_server_peer`: the address of open connection `id`,
    /// std::nullopt when it is not open; throws `error` otherwise.
    std::optional<sockflow_addr> peer(std::uint64_t id) const
    {
        sockflow_addr a;
        int rc = sockflow_server_peer(s_, id, &a);
        if (rc == SOCKFLOW_EBADHANDLE)
            return std::nullopt;
        detail::check(rc);
        return a;
    }
    /// `sockflow_server_set_idle_timeout`: connection `id`'s own idle
    /// timeout (`forever` = never); throws `error`.
    void set_idle_timeout(std::uint64_t id, std::chrono::milliseconds timeout)
    {
        detail::check(sockflow_server_set_idle_timeout(s_, id, detail::ms(timeout)));
    }
    /// `sockflow_server_connect`: opens an outgoing TCP connection on the
    /// loop and returns its id at once (`on_connect` follows, or `on_close`
    /// with CONNECT_FAILED); `user` is its user pointer. Throws `error`.
    std::uint64_t connect(const std::string &host, int port, std::chrono::milliseconds timeout = forever, void *user = nullptr)
    {
        std::uint64_t id = 0;
        detail::check(sockflow_server_connect(s_, host.c_str(), port, detail::ms(timeout), user, &id));
        return id;
    }
    /// `sockflow_server_connect_args`: like `connect`, as client arguments
    /// say (host or `unix:PATH`, port, `--timeout`, and TLS with `--tls`,
    /// `--tls-ca`, `--tls-cert`/`--tls-key`). Throws `error`.
    std::uint64_t connect(const sockflow_args &a, void *user = nullptr)
    {
        std::uint64_t id = 0;
        detail::check(sockflow_server_connect_args(s_, &a, user, &id));
        return id;
    }

    /// Calls `f()` on the loop thread after `after`, then every `repeat`
    /// (0 = once). `f` returns void, or a sockflow_action: anything but
    /// CONTINUE ends the timer, STOP also stops the server. Returns its id
    /// (`sockflow_server_timer_add`); throws `error`. `f` is kept by the
    /// server until the timer ends; an exception from it is logged and
    /// cancels the timer.
    template <class F> std::uint64_t add_timer(std::chrono::milliseconds after, std::chrono::milliseconds repeat, F f)
    {
        auto e = std::make_unique<detail::timer_entry>();
        if constexpr (std::is_void_v<std::invoke_result_t<F &>>)
            e->fn = [f = std::move(f)]() mutable {
                f();
                return static_cast<int>(SOCKFLOW_ACTION_CONTINUE);
            };
        else
            e->fn = [f = std::move(f)]() mutable { return static_cast<int>(f()); };
        e->st = st_;
        e->repeats = repeat.count() > 0;
        std::uint64_t id = 0;
        detail::check(sockflow_server_timer_add(s_, detail::ms(after), detail::ms(repeat), detail::state::on_timer, e.get(), &id));
        std::lock_guard<std::mutex> g(st_->mu);
        if (!e->done) // it may have fired and ended already
            st_->timers.emplace(id, std::move(e));
        return id;
    }
    /// Cancels a timer: its function is not called again (it is freed when
    /// the timer was next due). An id that ended is ignored; throws `error`
    /// (EINVAL) on an empty server.
    void cancel_timer(std::uint64_t id)
    {
        if (!st_)
            throw error(SOCKFLOW_EINVAL, "cancel_timer: the server is empty");
        std::lock_guard<std::mutex> g(st_->mu);
        auto it = st_->timers.find(id);
        if (it != st_->timers.end())
            it->second->cancelled = true;
    }

    /// The C server, owned by its `server` (nullptr when empty).
    sockflow_server *get() const noexcept { return s_; }

protected:
    server_ref() = default;
    /// Controls of `s`, whose callbacks' state is `st` (neither owned).
    server_ref(sockflow_server *s, detail::state *st) noexcept : s_(s), st_(st) {}
    friend class conn;
    /// The C server.
    sockflow_server *s_ = nullptr;
    /// The handler and timers its C callbacks reach.
    detail::state *st_ = nullptr;
};

inline server_ref conn::server() const noexcept { return server_ref(st_->srv, st_); }

/// A server (TCP, UDP, or a client loop), closed by its destructor: that
/// stops it if it runs and waits for the run to return.
class server : public server_ref {
public:
    /// An empty server (`!s`).
    server() = default;
    /// Takes `o`'s server; `o` is then empty.
    server(server &&o) noexcept : server_ref(std::exchange(o.s_, nullptr), std::exchange(o.st_, nullptr)) {}
    /// Closes this server (see `close()`), then takes `o`'s.
    server &operator=(server &&o) noexcept
    {
        if (this != &o) {
            close();
            s_ = std::exchange(o.s_, nullptr);
            st_ = std::exchange(o.st_, nullptr);
        }
        return *this;
    }
    /// `close()`.
    ~server() { close(); }

    /// `sockflow_tcp_server_new`: a TCP server on the host and port of `a`
    /// (with its frame, quit word), not yet running; throws `error`
    /// (EADDRINUSE, ...). `h` is kept for the server's life.
    static server tcp(const sockflow_args &a, handler h, const sockflow_server_config &cfg = config()) { return server(sockflow_tcp_server_new, &a, std::move(h), cfg); }
    /// `sockflow_udp_server_new`: a UDP server, each datagram a message (see
    /// `udp_peers`); throws `error`.
    static server udp(const sockflow_args &a, handler h, const sockflow_server_config &cfg = config()) { return server(sockflow_udp_server_new, &a, std::move(h), cfg); }
    /// `sockflow_client_loop_new`: a loop with no listener, for outgoing
    /// connections (`connect`); `a` gives the frame and quit word (nullptr:
    /// line frames, no quit word). Throws `error`.
    static server client_loop(handler h, const sockflow_server_config &cfg = config(), const sockflow_args *a = nullptr)
    {
        return server(sockflow_client_loop_new, a, std::move(h), cfg);
    }

    /// `sockflow_server_run`: runs on this thread until stopped (a server
    /// runs once); throws `error` (EBUSY while it runs elsewhere, ...).
    void run() { detail::check(sockflow_server_run(s_)); }
    /// `sockflow_server_start`: runs on a thread of its own and returns;
    /// `stop()` then `join()` (or destroy). Throws `error`.
    void start() { detail::check(sockflow_server_start(s_)); }
    /// `sockflow_server_join`: waits for the run to end; throws the error
    /// that ended it, if any (EBUSY from the server's own callbacks).
    void join() { detail::check(sockflow_server_join(s_)); }
    /// `sockflow_server_turn`: one turn for the program's own loop, waiting
    /// at most `timeout`; false from the turn that saw a stop. Throws `error`.
    bool turn(std::chrono::milliseconds timeout) { return detail::check(sockflow_server_turn(s_, detail::ms(timeout))) == SOCKFLOW_TURN_RUNNING; }
    /// `sockflow_server_fd`: the descriptor the program's own loop polls for
    /// reading (owned by the server); throws `error`.
    int fd() const { return detail::check(sockflow_server_fd(s_)); }
    /// `sockflow_server_timeout`: how long that poll may wait before the next
    /// turn (`forever`: no limit); throws `error`.
    std::chrono::milliseconds timeout() {
        int ms = SOCKFLOW_FOREVER;
        detail::check(sockflow_server_timeout(s_, &ms));
        return std::chrono::milliseconds(ms);
    }

    /// `sockflow_server_close`: stops (if running), waits, and frees the
    /// server now; the handler is released once no callback runs. The server
    /// is then empty. Not from the server's own callbacks: `stop()` there.
    void close() noexcept
    {
        if (s_)
            sockflow_server_close(std::exchange(s_, nullptr));
        if (st_)
            std::exchange(st_, nullptr)->release();
    }
    /// True unless empty (default-made, moved from or closed).
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    using factory = int (*)(const sockflow_args *, const sockflow_server_config *, sockflow_handler, void *, sockflow_server **);
    server(factory make, const sockflow_args *a, handler h, const sockflow_server_config &cfg)
    {
        st_ = new detail::state(std::move(h), a, cfg);
        int rc = make(a, &cfg, st_->c_handler(), st_, &s_);
        if (rc < 0) {
            error e = detail::last(rc);
            close();
            throw e;
        }
        st_->srv = s_;
    }
};

/// The whole TCP server in one call: a server on `a` that SIGINT/SIGTERM
/// stop gracefully, run on this thread; throws `error` if it cannot run.
inline void tcp_server_run(const sockflow_args &a, handler h)
{
    config cfg;
    cfg.handle_signals = 1;
    server::tcp(a, std::move(h), cfg).run();
}

/// The whole UDP server in one call (see `tcp_server_run`).
inline void udp_server_run(const sockflow_args &a, handler h)
{
    config cfg;
    cfg.handle_signals = 1;
    server::udp(a, std::move(h), cfg).run();
}

/// Runs a program's `body` and returns its exit status: 0 (or
/// `exit_code(rc)` when `body` returns an int), or, for an exception that
/// escaped it, `PROG: what()` on stderr (unless sockflow printed it
/// already, as `args::parse` does a usage line) and 1 (2 for usage errors,
/// 0 for --help).
template <class F> int run_main(int argc, char *const *argv, F &&body) noexcept
{
    const char *prog = argc > 0 && argv && argv[0] ? argv[0] : "sockflow";
    if (const char *slash = std::strrchr(prog, '/'))
        prog = slash + 1;
    try {
        if constexpr (std::is_void_v<std::invoke_result_t<F &>>) {
            body();
            return 0;
        } else {
            return sockflow_exit_code(static_cast<int>(body()));
        }
    } catch (const error &e) {
        if (!e.reported())
            std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return sockflow_exit_code(e.code());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
    } catch (...) {
        std::fprintf(stderr, "%s: an exception not derived from std::exception\n", prog);
    }
    return 1;
}

} // namespace sockflow

#endif /* SOCKFLOW_HPP */
