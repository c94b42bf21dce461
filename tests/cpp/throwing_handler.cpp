// A server whose callbacks throw on command, for tests/cpp.rs: every
// exception must be caught by sockflow.hpp's trampolines (never reach Rust,
// which would abort the process), logged on stderr, and the thrower's
// connection closed with reason ERROR while the others are served on.
// Messages: "throw" (a std::runtime_error from on_message), "throw-int" (an
// int), "arm-connect" (the next on_connect throws), "close-throws" (this
// connection's on_close throws), "timer-throw" (a timer throws, a later one
// prints "timer after"); anything else is echoed. stdout: "connect N" and
// "close N REASON" per connection, N counting from 1.
#include <sockflow.hpp>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>

static const char *reason_name(sockflow::close_reason r)
{
    switch (r) {
    case SOCKFLOW_CLOSE_REASON_PEER: return "PEER";
    case SOCKFLOW_CLOSE_REASON_ERROR: return "ERROR";
    case SOCKFLOW_CLOSE_REASON_STOPPING: return "STOPPING";
    case SOCKFLOW_CLOSE_REASON_HANDLER: return "HANDLER";
    default: return "OTHER";
    }
}

int main(int argc, char **argv)
{
    std::map<std::uint64_t, int> seq; // connection id -> N
    std::set<std::uint64_t> close_throws;
    int count = 0;
    bool arm_connect = false;
    sockflow::server *srv = nullptr;
    sockflow::handler h;
    h.on_connect = [&](sockflow::conn &c) {
        seq[c.id()] = ++count;
        std::cout << "connect " << count << std::endl;
        if (std::exchange(arm_connect, false))
            throw std::logic_error("connect refused by the test");
    };
    h.on_message = [&](sockflow::conn &c, std::string_view msg) {
        if (msg == "throw")
            throw std::runtime_error("boom");
        if (msg == "throw-int")
            throw 42;
        if (msg == "arm-connect")
            arm_connect = true;
        if (msg == "close-throws")
            close_throws.insert(c.id());
        if (msg == "timer-throw") {
            srv->add_timer(std::chrono::milliseconds(0), std::chrono::milliseconds(0), []() -> sockflow_action { throw std::runtime_error("tick"); });
            srv->add_timer(std::chrono::milliseconds(50), std::chrono::milliseconds(0), [] { std::cout << "timer after" << std::endl; });
        }
        c.send(msg);
    };
    h.on_close = [&](sockflow::conn &c, sockflow::close_reason r) {
        std::cout << "close " << seq[c.id()] << " " << reason_name(r) << std::endl;
        if (close_throws.count(c.id()))
            throw std::runtime_error("on_close fails too");
    };
    return sockflow::run_main(argc, argv, [&] {
        sockflow::config cfg;
        cfg.handle_signals = 1;
        auto s = sockflow::server::tcp(sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_SERVER), h, cfg);
        srv = &s;
        s.run();
    });
}
