// The ceiling for scripts/bench: the smallest reasonable Boost.Beast HTTP/1.1 keep-alive server
// with Troupe's threading model. N io threads each run their own io_context; the acceptor lives
// on context 0 and hands every accepted socket to the next context round-robin, so a connection
// stays on one single-threaded context for its whole life and needs no strand. Every request is
// answered 200 application/json {"status":"ok"}. What Troupe adds on top of this (routing,
// request ids, an actor round trip, metrics) is what scripts/bench measures against it.
//
//   troupe_bench_hello [--port=N] [--threads=N]
//
// --port=0 (the default) takes an ephemeral port. Once listening it prints
// `listening url=http://127.0.0.1:PORT` on stdout; SIGINT or SIGTERM stops it (exit 0).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view hello_body = R"({"status":"ok"})";
constexpr std::chrono::seconds idle_timeout{60}; // Troupe's http.idle-timeout-ms default

/// One keep-alive connection; lives on exactly one io_context (one thread), so no strand.
class session : public std::enable_shared_from_this<session> {
public:
  explicit session(tcp::socket socket) : stream_(std::move(socket)) {}

  void start() {
    read_request();
  }

private:
  void read_request() {
    request_ = {};
    stream_.expires_after(idle_timeout);
    http::async_read(stream_, buffer_, request_,
                     beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) {
      // end_of_stream: the client closed; anything else (timeout, reset, parse error) ends the
      // connection the same way.
      close();
      return;
    }
    response_ = {};
    response_.result(http::status::ok);
    response_.version(request_.version());
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(request_.keep_alive());
    response_.body() = hello_body;
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec || !response_.keep_alive()) {
      close();
      return;
    }
    read_request();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

/// The acceptor on context 0; each accepted socket is created on the next context in turn.
class listener {
public:
  listener(std::vector<std::unique_ptr<asio::io_context>>& contexts, const tcp::endpoint& at)
      : contexts_(contexts), acceptor_(*contexts.front()) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  std::uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  void accept_next() {
    auto& target = *contexts_[next_];
    next_ = (next_ + 1) % contexts_.size();
    acceptor_.async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
        return;
      }
      if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        // The socket belongs to its own context: start the session there, not here.
        auto executor = socket.get_executor();
        asio::post(executor, [s = std::make_shared<session>(std::move(socket))] { s->start(); });
      }
      accept_next();
    });
  }

  void close() {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

private:
  std::vector<std::unique_ptr<asio::io_context>>& contexts_;
  tcp::acceptor acceptor_;
  std::size_t next_ = 0;
};

struct options {
  std::uint16_t port = 0;
  unsigned threads = 0;
};

std::optional<unsigned long> parse_number(std::string_view text, unsigned long max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos
      || text.size() > 9) {
    return std::nullopt;
  }
  const auto value = std::stoul(std::string{text});
  if (value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<options> parse_options(int argc, char** argv) {
  options result;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg{argv[i]};
    constexpr std::string_view port_flag = "--port=";
    constexpr std::string_view threads_flag = "--threads=";
    if (arg.substr(0, port_flag.size()) == port_flag) {
      const auto value = parse_number(arg.substr(port_flag.size()), 65535);
      if (!value) {
        std::fprintf(stderr, "bad value in %s (expected 0-65535)\n", argv[i]);
        return std::nullopt;
      }
      result.port = static_cast<std::uint16_t>(*value);
    } else if (arg.substr(0, threads_flag.size()) == threads_flag) {
      const auto value = parse_number(arg.substr(threads_flag.size()), 1024);
      if (!value || *value == 0) {
        std::fprintf(stderr, "bad value in %s (expected 1-1024)\n", argv[i]);
        return std::nullopt;
      }
      result.threads = static_cast<unsigned>(*value);
    } else {
      std::fprintf(stderr, "unknown argument %s\nusage: %s [--port=N] [--threads=N]\n", argv[i],
                   argv[0]);
      return std::nullopt;
    }
  }
  if (result.threads == 0) {
    result.threads = std::max(1U, std::thread::hardware_concurrency());
  }
  return result;
}

} // namespace

int main(int argc, char** argv) {
  const auto opts = parse_options(argc, argv);
  if (!opts) {
    return 2;
  }
  try {
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (unsigned i = 0; i < opts->threads; ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1)); // concurrency hint: one thread
      guards.push_back(asio::make_work_guard(*contexts.back()));
    }

    listener acceptor{contexts, {asio::ip::make_address("127.0.0.1"), opts->port}};
    acceptor.accept_next();

    asio::signal_set signals{*contexts.front(), SIGINT, SIGTERM};
    signals.async_wait([&](beast::error_code ec, int /*signal*/) {
      if (ec) {
        return;
      }
      acceptor.close();
      for (auto& guard : guards) {
        guard.reset();
      }
      for (auto& context : contexts) {
        context->stop(); // a benchmark server: open connections are simply dropped
      }
    });

    std::printf("listening url=http://127.0.0.1:%u\n", unsigned{acceptor.port()});
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts.size(); ++i) {
      threads.emplace_back([&context = *contexts[i]] { context.run(); });
    }
    contexts.front()->run();
    for (auto& thread : threads) {
      thread.join();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello server failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
