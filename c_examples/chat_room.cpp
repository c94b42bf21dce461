// A chat room in C++: a client's first line is its nickname, later lines go to the others as "nick: text",
// "/who" lists the nicknames, "/quit" leaves. usage: chat_room_cpp [options] [host] <port>
#include <sockflow.hpp>
#include <algorithm>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
    std::vector<std::pair<std::uint64_t, std::string>> room; // (id, nickname) in join order; callbacks run on one thread
    auto member = [&](sockflow::conn &c) { return std::find_if(room.begin(), room.end(), [&](auto &m) { return m.first == c.id(); }); };
    sockflow::handler h;
    h.on_message = [&](sockflow::conn &c, std::string_view msg) {
        auto me = member(c);
        if (me == room.end()) { // the first line: the nickname
            if (msg.empty() || msg.size() > 31 || msg.find('\0') != msg.npos) {
                c.send("* that nickname is empty or too long");
                return c.close();
            }
            room.emplace_back(c.id(), msg);
            return c.broadcast("* " + room.back().second + " joined");
        }
        if (msg == "/quit")
            return c.close();
        if (msg != "/who")
            return c.broadcast(me->second + ": " + std::string(msg));
        std::string who;
        for (auto &m : room)
            who += (who.empty() ? "" : ",") + m.second;
        c.send(who);
    };
    h.on_close = [&](sockflow::conn &c, sockflow::close_reason) {
        auto me = member(c);
        if (me != room.end()) {
            c.broadcast("* " + me->second + " left");
            room.erase(me);
        }
    };
    return sockflow::run_main(argc, argv, [&] { sockflow::tcp_server_run(sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_SERVER), h); });
}
