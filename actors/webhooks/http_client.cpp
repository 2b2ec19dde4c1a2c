#include "actors/webhooks/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace troupe::actors {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t read_limit = 1024 * 1024; // bytes of a response body read at most

bool forbidden(const net::ip::address& address) {
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return protocol::webhooks::forbidden_address(bytes.data(), bytes.size());
  }
  const auto bytes = address.to_v6().to_bytes();
  return protocol::webhooks::forbidden_address(bytes.data(), bytes.size());
}

struct connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() {
    return plain ? *plain : beast::get_lowest_layer(*secure);
  }
};

std::string pool_key(const protocol::webhooks::target& t) {
  return std::string{t.tls ? "https://" : "http://"} + t.host + ":" + t.port;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

} // namespace

struct http_client::impl {
  explicit impl(http_client_options o) : options(o), work(net::make_work_guard(ioc)) {
    tls.set_default_verify_paths();
    tls.set_verify_mode(net::ssl::verify_peer);
    tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2
                    | net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1
                    | net::ssl::context::no_tlsv1_1);
  }

  std::unique_ptr<connection> take_idle(const std::string& key) {
    std::lock_guard<std::mutex> guard{mutex};
    auto i = idle.find(key);
    while (i != idle.end() && !i->second.empty()) {
      auto c = std::move(i->second.back());
      i->second.pop_back();
      if (c->lowest().socket().is_open()) {
        return c;
      }
    }
    return nullptr;
  }

  void put_idle(const std::string& key, std::unique_ptr<connection> c) {
    std::lock_guard<std::mutex> guard{mutex};
    auto& list = idle[key];
    if (list.size() < options.max_idle_per_host) {
      list.push_back(std::move(c));
    }
  }

  // Starts `start` now, or when a request in flight ends.
  void admit(std::function<void()> start) {
    {
      std::lock_guard<std::mutex> guard{mutex};
      if (active >= options.max_active) {
        waiting.push_back(std::move(start));
        return;
      }
      ++active;
    }
    net::post(ioc, std::move(start));
  }

  // A request ended: its place goes to the next waiting one.
  void release() {
    std::function<void()> next;
    {
      std::lock_guard<std::mutex> guard{mutex};
      if (waiting.empty()) {
        --active;
        return;
      }
      next = std::move(waiting.front());
      waiting.pop_front();
    }
    net::post(ioc, std::move(next));
  }

  http_client_options options;
  std::size_t active = 0;                    // guarded by mutex
  std::deque<std::function<void()>> waiting; // guarded by mutex
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  net::ssl::context tls{net::ssl::context::tls_client};
  std::mutex mutex;
  std::map<std::string, std::vector<std::unique_ptr<connection>>> idle;
  std::vector<std::thread> threads;
};

namespace {

// One request: take a pooled connection or open one, write, read, give the connection back.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  // `client` outlives every exchange: it joins its io threads, then destroys the handlers.
  exchange(http_client::impl* client, outbound_request request,
           std::function<void(outbound_response)> done)
      : client_(client), request_(std::move(request)), done_(std::move(done)),
        resolver_(net::make_strand(client_->ioc)), key_(pool_key(request_.target)) {}

  void start() {
    started_ = clock_type::now();
    deadline_ = started_ + limit();
    build_request();
    conn_ = client_->take_idle(key_);
    if (conn_) {
      reused_ = true;
      write();
    } else {
      resolve();
    }
  }

private:
  std::chrono::milliseconds limit() const {
    return request_.timeout.count() > 0 ? request_.timeout : client_->options.timeout;
  }

  void build_request() {
    const auto& t = request_.target;
    const auto verb = bhttp::string_to_verb(request_.method);
    req_ = {verb == bhttp::verb::unknown ? bhttp::verb::post : verb, t.path, 11};
    const bool v6 = t.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + t.host + "]" : t.host;
    if (t.port != (t.tls ? "443" : "80")) {
      host += ":" + t.port;
    }
    req_.set(bhttp::field::host, host);
    req_.set(bhttp::field::user_agent, request_.user_agent);
    if (!request_.body.empty() || req_.method() == bhttp::verb::post) {
      req_.set(bhttp::field::content_type, "application/json");
    }
    req_.set(bhttp::field::accept, "*/*");
    for (const auto& [name, value] : request_.headers) {
      req_.set(name, value);
    }
    req_.body() = request_.body;
    req_.keep_alive(true);
    req_.prepare_payload();
  }

  std::optional<std::chrono::milliseconds> remaining() const {
    auto left
      = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock_type::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    return left;
  }

  void resolve() {
    reused_ = false;
    resolver_.async_resolve(
      request_.target.host, request_.target.port,
      [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
        self->on_resolve(ec, std::move(r));
      });
  }

  void on_resolve(boost::system::error_code ec, const tcp::resolver::results_type& results) {
    if (ec) {
      finish_error("cannot resolve " + request_.target.host + ": " + ec.message());
      return;
    }
    std::vector<tcp::endpoint> allowed;
    std::string refused;
    for (const auto& entry : results) {
      if (!client_->options.allow_private_targets && forbidden(entry.endpoint().address())) {
        refused = entry.endpoint().address().to_string();
      } else {
        allowed.push_back(entry.endpoint());
      }
    }
    if (allowed.empty()) {
      finish_error("target address refused: " + request_.target.host + " resolves to " + refused
                   + ", a private, loopback, link-local or reserved address "
                     "(webhooks.allow-private-targets is false)");
      return;
    }
    auto left = remaining();
    if (!left) {
      finish_timeout();
      return;
    }
    conn_ = std::make_unique<connection>();
    if (request_.target.tls) {
      conn_->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(
        net::make_strand(client_->ioc), client_->tls);
    } else {
      conn_->plain = std::make_unique<beast::tcp_stream>(net::make_strand(client_->ioc));
    }
    conn_->lowest().expires_after(*left);
    conn_->lowest().async_connect(
      allowed, [self = shared_from_this()](boost::system::error_code err, const tcp::endpoint& ep) {
        self->on_connect(err, ep);
      });
  }

  void on_connect(boost::system::error_code ec, const tcp::endpoint& ep) {
    if (ec) {
      fail(ec, "cannot connect to " + request_.target.host + ":" + request_.target.port);
      return;
    }
    // The address actually connected to, checked again: what DNS answered cannot slip past.
    boost::system::error_code peer_ec;
    auto peer = conn_->lowest().socket().remote_endpoint(peer_ec);
    if (peer_ec) {
      peer = ep;
    }
    if (!client_->options.allow_private_targets && forbidden(peer.address())) {
      finish_error("target address refused: connected to " + peer.address().to_string()
                   + ", a private, loopback, link-local or reserved address");
      return;
    }
    if (!conn_->secure) {
      write();
      return;
    }
    const auto& host = request_.target.host;
    if (!is_ip_literal(host)) {
      SSL_set_tlsext_host_name(conn_->secure->native_handle(), host.c_str());
    }
    conn_->secure->set_verify_callback(net::ssl::host_name_verification(host));
    conn_->secure->async_handshake(net::ssl::stream_base::client,
                                   [self = shared_from_this()](boost::system::error_code err) {
                                     if (err) {
                                       self->fail(err, "TLS handshake failed");
                                       return;
                                     }
                                     self->write();
                                   });
  }

  void write() {
    auto left = remaining();
    if (!left) {
      finish_timeout();
      return;
    }
    conn_->lowest().expires_after(*left);
    if (conn_->plain) {
      do_write(*conn_->plain);
    } else {
      do_write(*conn_->secure);
    }
  }

  template <class Stream>
  void do_write(Stream& stream) {
    bhttp::async_write(
      stream, req_,
      [self = shared_from_this(), &stream](boost::system::error_code ec, std::size_t) {
        if (ec) {
          self->retry_or_fail(ec, "cannot send the request");
          return;
        }
        self->do_read(stream);
      });
  }

  template <class Stream>
  void do_read(Stream& stream) {
    parser_.emplace();
    parser_->body_limit(read_limit);
    parser_->header_limit(16 * 1024);
    bhttp::async_read(stream, conn_->buffer, *parser_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  // A pooled connection the server closed while it was idle fails at once: open a new one
  // (the request never reached the server, so sending it again is safe).
  void retry_or_fail(boost::system::error_code ec, const std::string& what) {
    const bool stale = ec == net::error::connection_reset || ec == net::error::broken_pipe
                       || ec == bhttp::error::end_of_stream || ec == net::error::eof;
    if (reused_ && stale && !(parser_ && parser_->got_some())) {
      conn_.reset();
      parser_.reset();
      resolve();
      return;
    }
    fail(ec, what);
  }

  void on_read(boost::system::error_code ec) {
    outbound_response out;
    if (ec == bhttp::error::body_limit && parser_->is_header_done()) {
      // A 2xx with a huge body still counts; the connection cannot be reused.
      respond(std::move(out), false);
      return;
    }
    if (ec) {
      retry_or_fail(ec, "cannot read the response");
      return;
    }
    respond(std::move(out), parser_->get().keep_alive());
  }

  void respond(outbound_response out, bool reusable) {
    auto& res = parser_->get();
    out.status = static_cast<int>(res.result_int());
    auto& body = res.body();
    if (body.size() > client_->options.response_body_limit) {
      body.resize(client_->options.response_body_limit);
    }
    body.erase(std::remove(body.begin(), body.end(), '\0'), body.end());
    out.body = std::move(body);
    if (auto ra = res.find(bhttp::field::retry_after); ra != res.end()) {
      out.retry_after = std::string{ra->value()};
    }
    if (reusable) {
      conn_->lowest().expires_never();
      client_->put_idle(key_, std::move(conn_));
    }
    finish(std::move(out));
  }

  void fail(boost::system::error_code ec, const std::string& what) {
    if (ec == beast::error::timeout) {
      finish_timeout();
      return;
    }
    finish_error(what + ": " + ec.message());
  }

  void finish_timeout() {
    finish_error("timed out after " + std::to_string(limit().count()) + " ms");
  }

  void finish_error(std::string error) {
    outbound_response out;
    out.error = std::move(error);
    conn_.reset();
    finish(std::move(out));
  }

  void finish(outbound_response out) {
    out.duration_ms
      = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started_).count();
    if (!done_) {
      return; // already finished
    }
    auto done = std::move(done_);
    done_ = nullptr;
    client_->release();
    done(std::move(out));
  }

  http_client::impl* client_;
  outbound_request request_;
  std::function<void(outbound_response)> done_;
  tcp::resolver resolver_;
  clock_type::time_point started_;
  clock_type::time_point deadline_;
  std::string key_;
  bool reused_ = false;
  std::unique_ptr<connection> conn_;
  bhttp::request<bhttp::string_body> req_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
};

} // namespace

http_client::http_client(http_client_options options) : impl_(std::make_unique<impl>(options)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options.threads); ++i) {
    impl_->threads.emplace_back([client = impl_.get()] { client->ioc.run(); });
  }
}

http_client::~http_client() {
  stop();
}

void http_client::send(outbound_request request, std::function<void(outbound_response)> done) {
  auto x = std::make_shared<exchange>(impl_.get(), std::move(request), std::move(done));
  impl_->admit([x] { x->start(); });
}

void http_client::stop() {
  if (impl_->threads.empty()) {
    return;
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) {
      t.join();
    }
  }
  impl_->threads.clear();
  {
    std::lock_guard<std::mutex> guard{impl_->mutex};
    impl_->idle.clear();
  }
}

} // namespace troupe::actors
