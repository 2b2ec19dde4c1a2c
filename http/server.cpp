#include "http/server.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "http/access_log.hpp"
#include "protocol/logging.hpp"
#include "protocol/request_id.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace troupe::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view unmatched_route = "(unmatched)";
constexpr std::string_view request_id_field = "X-Request-ID";
constexpr std::chrono::seconds linger_timeout{1};
constexpr std::size_t linger_max_bytes = 1 << 20;

verb from_beast(bhttp::verb v) {
  switch (v) {
  case bhttp::verb::get:
    return verb::get;
  case bhttp::verb::head:
    return verb::head;
  case bhttp::verb::post:
    return verb::post;
  case bhttp::verb::put:
    return verb::put;
  case bhttp::verb::patch:
    return verb::patch;
  case bhttp::verb::delete_:
    return verb::del;
  case bhttp::verb::options:
    return verb::options;
  default:
    return verb::other;
  }
}

// The RFC 9110 Date header value, computed at most once per second per thread.
const std::string& http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_at) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    const auto n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

// Reply functions post into io_contexts; the gate makes sure none does after teardown began.
struct post_gate {
  std::shared_mutex mutex;
  bool open = true;
};

class session_base;

} // namespace

struct tls_context {
  asio::ssl::context ssl{asio::ssl::context::tls_server};
};

std::shared_ptr<tls_context> load_tls_context(const std::string& cert_file,
                                              const std::string& key_file, std::string& error) {
  auto tls = std::make_shared<tls_context>();
  beast::error_code ec;
  tls->ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2
                         | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1
                         | asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                       ec);
  if (!ec) {
    tls->ssl.use_certificate_chain_file(cert_file, ec);
    if (ec) {
      error = "http.tls-cert: cannot use \"" + cert_file + "\": " + ec.message();
      return nullptr;
    }
  }
  if (!ec) {
    tls->ssl.use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (ec) {
      error = "http.tls-key: cannot use \"" + key_file + "\": " + ec.message();
      return nullptr;
    }
  }
  if (ec) {
    error = "http.tls-cert: " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(tls->ssl.native_handle()) != 1) {
    error = "http.tls-key: the private key does not match the certificate in http.tls-cert";
    return nullptr;
  }
  return tls;
}

struct server::impl {
  server_options options;
  std::shared_ptr<router> routes;
  std::shared_ptr<actors::metrics_registry> metrics;
  std::shared_ptr<spdlog::logger> log;
  std::function<void(std::string)> on_fatal;
  protocol::log_format format = protocol::current_log_format();
  std::unordered_map<std::string, std::size_t> series_by_template;
  std::size_t unmatched_series = 0;

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_retry;
  std::unique_ptr<access_log> requests_log;                    // null when info lines are off
  std::vector<std::unique_ptr<asio::steady_timer>> log_timers; // one per context
  std::size_t next_context = 0;
  std::uint16_t bound_port = 0;

  std::shared_ptr<post_gate> gate = std::make_shared<post_gate>();
  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::mutex sessions_mutex;
  std::condition_variable sessions_changed;
  std::unordered_map<session_base*, std::shared_ptr<session_base>> sessions;

  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket, std::size_t index);
  void reject_busy(tcp::socket& socket);
  void remove(session_base* s);
  void run_context(std::size_t index);
  void arm_log_flush(std::size_t index);
};

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// What the server's bookkeeping needs of a connection, whatever its stream.
class session_base {
public:
  virtual ~session_base() = default;
  virtual void start() = 0;
  virtual void drain() = 0;
  virtual void force_close() = 0;
  virtual asio::any_io_executor executor() = 0;
};

// One connection: plain TCP (`beast::tcp_stream`) or TLS (`tls_stream`).
template <class Stream>
class session final : public session_base, public std::enable_shared_from_this<session<Stream>> {
public:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  template <class... Args>
  explicit session(server::impl& srv, std::size_t context_index, Args&&... stream_args)
      : stream_(std::forward<Args>(stream_args)...), srv_(srv), context_index_(context_index) {
    beast::error_code ec;
    const auto endpoint = lowest().socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = endpoint.address().to_string();
    }
  }

  void start() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (is_tls) {
        self->lowest().expires_after(self->srv_.options.read_timeout);
        self->stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            self->close(); // not TLS, or a bad handshake
          } else {
            self->wait();
          }
        });
      } else {
        self->wait();
      }
    });
  }

  asio::any_io_executor executor() override {
    return stream_.get_executor();
  }

  // Graceful shutdown: an idle connection closes now, a busy one (streaming included) after
  // its response.
  void drain() override {
    draining_ = true;
    if (phase_ == phase::idle) {
      close();
    }
  }

  void force_close() override {
    close();
  }

  // Writes the handler's response. Runs on this session's io thread.
  void send(response r) {
    if (phase_ != phase::handling) {
      return; // a handler replied twice; the first answer stands
    }
    if (r.stream && r.status != 204 && r.status != 304) {
      send_stream(std::move(r));
      return;
    }
    phase_ = phase::writing;
    res_ = {};
    const bool keep = keep_alive_ && !draining_ && !srv_.draining.load();
    set_fields(res_, r, keep);
    res_.body() = std::move(r.body);
    if (r.status == 204 || r.status == 304) {
      res_.body().clear(); // RFC 9110 8.6: no body and no Content-Length
    } else {
      res_.prepare_payload();
    }
    if (head_) {
      const auto length = res_.body().size();
      res_.body().clear();
      res_.content_length(length);
    }
    record(r.status);
    lowest().expires_after(srv_.options.read_timeout);
    bhttp::async_write(stream_, res_,
                       [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
                         self->on_write(ec, keep);
                       });
  }

private:
  enum class phase { idle, reading, handling, writing, streaming, closed };

  // The header fields every response carries, from the handler's `r` and this request.
  template <class Body>
  void set_fields(bhttp::response<Body>& m, const response& r, bool keep) {
    m.version(version_);
    m.result(static_cast<unsigned>(r.status));
    m.set(bhttp::field::server, "troupe");
    m.set(bhttp::field::date, http_date());
    if (!r.content_type.empty()) {
      m.set(bhttp::field::content_type, r.content_type);
    }
    for (const auto& [name, value] : r.headers) {
      m.insert(name, value);
    }
    m.set(request_id_field, ctx_.request_id);
    if (!ctx_.rate.bucket.empty()) {
      // API.md "Rate limits and quotas": the IETF pair and the X-RateLimit trio, one bucket.
      const auto& rate = ctx_.rate;
      const auto name = "\"" + rate.bucket + "\"";
      m.set("RateLimit-Policy",
            name + ";q=" + std::to_string(rate.limit) + ";w=" + std::to_string(rate.window_s));
      m.set("RateLimit",
            name + ";r=" + std::to_string(rate.remaining) + ";t=" + std::to_string(rate.reset_s));
      m.set("X-RateLimit-Limit", std::to_string(rate.limit));
      m.set("X-RateLimit-Remaining", std::to_string(rate.remaining));
      m.set("X-RateLimit-Reset", std::to_string(rate.reset_s));
    }
    m.keep_alive(keep);
  }

  // Starts a streamed response: the header now, then one piece at a time, asking the source
  // for the next piece only once the previous one is written (the back-pressure). HTTP/1.1
  // gets chunked encoding and may keep the connection; HTTP/1.0 has none, so its body ends
  // where the connection does. HEAD gets the header alone and never calls the source.
  void send_stream(response r) {
    phase_ = phase::streaming;
    chunked_ = version_ >= 11;
    stream_keep_ = keep_alive_ && !draining_ && !srv_.draining.load() && (chunked_ || head_);
    stream_res_.emplace();
    set_fields(*stream_res_, r, stream_keep_);
    if (chunked_) {
      stream_res_->chunked(true);
    } else if (!stream_keep_) {
      stream_res_->set(bhttp::field::connection, "close");
    }
    if (!head_) {
      source_ = std::move(r.stream);
    }
    stream_sr_.emplace(*stream_res_);
    // Metrics and the access log see the header go out: for a stream the duration is the
    // time to first byte, not to the last chunk.
    record(r.status);
    lowest().expires_after(srv_.options.read_timeout);
    bhttp::async_write_header(stream_, *stream_sr_,
                              [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                self->on_stream_header(ec);
                              });
  }

  void on_stream_header(beast::error_code ec) {
    stream_sr_.reset();
    stream_res_.reset();
    if (ec) {
      close();
      return;
    }
    if (head_) {
      end_stream();
      on_write(ec, stream_keep_);
      return;
    }
    pull();
  }

  // Asks the source for the next piece. No socket timer runs meanwhile (nothing is pending
  // on the socket): a slow source, say a database page, must not cut the stream; each write
  // arms the timeout again.
  void pull() {
    lowest().expires_never();
    awaiting_ = true;
    const auto ticket = ++pulls_;
    try {
      source_(make_deliver(ticket));
    } catch (const std::exception& e) {
      // A source bug must not take the io thread down; the log has the cause.
      srv_.log->error(protocol::event("body source threw")
                        .add("route", ctx_.route)
                        .add("request_id", ctx_.request_id)
                        .add("what", e.what())
                        .str());
      close();
    }
  }

  // The source's `deliver` for pull number `ticket`. Like a reply, it reaches this session
  // only through the gate and always by post: a source that delivers inline must not see
  // itself called again (or destroyed) before its own call has returned.
  std::function<void(body_chunk)> make_deliver(std::uint64_t ticket) {
    return [gate = srv_.gate, weak = this->weak_from_this(), ticket](body_chunk piece) {
      std::shared_lock<std::shared_mutex> lock{gate->mutex};
      if (!gate->open) {
        return;
      }
      if (auto self = weak.lock()) {
        auto ex = self->executor();
        asio::post(ex, [self = std::move(self), ticket, p = std::move(piece)]() mutable {
          self->on_piece(ticket, std::move(p));
        });
      }
    };
  }

  void on_piece(std::uint64_t ticket, body_chunk piece) {
    if (phase_ != phase::streaming || !awaiting_ || ticket != pulls_) {
      return; // the connection closed meanwhile, or a source delivered twice
    }
    awaiting_ = false;
    if (piece.failed) {
      if (srv_.log->should_log(spdlog::level::debug)) {
        srv_.log->debug(protocol::event("body source failed, closing the connection")
                          .add("route", ctx_.route)
                          .add("request_id", ctx_.request_id)
                          .str());
      }
      close(); // no terminating chunk: the client sees a truncated body
      return;
    }
    if (piece.data.empty()) {
      // An empty chunk would read as the terminating one.
      if (piece.last) {
        finish();
      } else {
        pull();
      }
      return;
    }
    last_piece_ = piece.last;
    piece_ = std::move(piece.data);
    lowest().expires_after(srv_.options.read_timeout);
    auto written = [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_piece_written(ec);
    };
    if (chunked_) {
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(piece_)), std::move(written));
    } else {
      asio::async_write(stream_, asio::buffer(piece_), std::move(written));
    }
  }

  void on_piece_written(beast::error_code ec) {
    if (ec) {
      close(); // the client left or stopped reading: the source is not called again
      return;
    }
    if (last_piece_) {
      finish();
    } else {
      pull();
    }
  }

  // Ends a complete stream. A drain that began meanwhile closes the connection afterwards,
  // as it would after a plain response (the header's promise is kept by closing cleanly).
  void finish() {
    end_stream();
    if (!chunked_) {
      linger_close(); // the close is the end of an HTTP/1.0 body
      return;
    }
    lowest().expires_after(srv_.options.read_timeout);
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        const bool keep
                          = self->stream_keep_ && !self->draining_ && !self->srv_.draining.load();
                        self->on_write(ec, keep);
                      });
  }

  // Drops the source (and what it captured) and the last piece's buffer.
  void end_stream() {
    source_ = nullptr;
    awaiting_ = false;
    std::string{}.swap(piece_);
  }

  void wait() {
    phase_ = phase::idle;
    if (draining_ || srv_.draining.load()) {
      close();
      return;
    }
    if (buffer_.size() > 0) {
      read_request(); // a pipelined request is already here
      return;
    }
    lowest().expires_after(srv_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  void read_request() {
    phase_ = phase::reading;
    parser_.emplace();
    parser_->header_limit(srv_.options.max_header_bytes);
    parser_->body_limit(srv_.options.max_body_bytes);
    lowest().expires_after(srv_.options.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    if (parser_->is_done()) {
      handle_request();
      return;
    }
    auto read_body = [self = this->shared_from_this()] {
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code body_ec, std::size_t) {
                          if (body_ec) {
                            self->on_read_error(body_ec);
                          } else {
                            self->handle_request();
                          }
                        });
    };
    // RFC 9110 10.1.1: an HTTP/1.0 client's Expect is ignored.
    const auto expect = parser_->get()[bhttp::field::expect];
    if (parser_->get().version() >= 11 && iequals(expect, "100-continue")) {
      static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(
        stream_, asio::buffer(continue_line.data(), continue_line.size()),
        [self = this->shared_from_this(), read_body](beast::error_code write_ec, std::size_t) {
          if (write_ec) {
            self->close();
          } else {
            read_body();
          }
        });
      return;
    }
    read_body();
  }

  void on_read_error(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      fail(protocol::errc::header_fields_too_large,
           "the request line and headers exceed " + std::to_string(srv_.options.max_header_bytes)
             + " bytes");
    } else if (ec == bhttp::error::body_limit) {
      fail(protocol::errc::payload_too_large,
           "the body exceeds " + std::to_string(srv_.options.max_body_bytes) + " bytes");
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()
               && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      fail(protocol::errc::bad_request, "malformed HTTP request: " + ec.message());
    } else {
      close(); // timeout, reset, end of stream or a request cut short: nothing to answer
    }
  }

  // Answers a request that could not be read completely, then closes the connection.
  void fail(protocol::errc code, std::string detail) {
    ctx_ = {};
    ctx_.route = std::string{unmatched_route};
    series_ = srv_.unmatched_series;
    method_index_ = actors::metrics_registry::methods.size() - 1;
    path_.clear();
    std::string_view client_id;
    if (parser_) {
      // The request line and the fields before the failure are already in the message
      // (a Content-Length over the limit fails while the fields are still being read).
      const auto& msg = parser_->get();
      if (!msg.target().empty()) {
        method_index_ = static_cast<std::size_t>(from_beast(msg.method()));
        const auto target = msg.target();
        path_ = std::string{target.substr(0, std::min<std::size_t>(target.find('?'), 256))};
      }
      client_id = msg[request_id_field];
    }
    ctx_.request_id
      = protocol::valid_request_id(client_id) ? std::string{client_id} : protocol::new_request_id();
    version_ = 11;
    keep_alive_ = false;
    head_ = false;
    started_ = std::chrono::steady_clock::now();
    phase_ = phase::handling;
    protocol::problem p;
    p.code = code;
    p.detail = std::move(detail);
    p.instance = path_;
    p.request_id = ctx_.request_id;
    send(problem_response(p));
  }

  void handle_request() {
    phase_ = phase::handling;
    started_ = std::chrono::steady_clock::now();
    auto& msg = parser_->get();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    const auto method = from_beast(msg.method());
    head_ = method == verb::head;
    method_index_ = static_cast<std::size_t>(method);

    request req;
    req.method = method;
    const std::string_view target = msg.target();
    const auto question = target.find('?');
    req.path = std::string{target.substr(0, question)};
    if (question != std::string_view::npos) {
      req.query = std::string{target.substr(question + 1)};
    }
    req.headers.reserve(16);
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
    req.body = std::move(msg.body());
    path_ = req.path.substr(0, 256);

    ctx_ = {};
    ctx_.remote = remote_;
    req.remote = remote_;
    const auto client_id = req.header("X-Request-ID");
    ctx_.request_id
      = protocol::valid_request_id(client_id) ? std::string{client_id} : protocol::new_request_id();
    if (req.path.empty() || req.path.front() != '/') {
      ctx_.route = std::string{unmatched_route};
      series_ = srv_.unmatched_series;
      send(problem_response(protocol::errc::bad_request, req, ctx_,
                            "the request target must be an absolute path"));
      return;
    }
    current_ = std::move(req);
    if (srv_.options.resolve_tenant && is_tenant_api(current_.path)) {
      // The tenant comes first: an unknown or suspended tenant is the answer, whatever the
      // route. The resolver answers on another thread; continue on this connection's.
      srv_.options.resolve_tenant(current_, make_continuation());
      return;
    }
    dispatch();
  }

  // Routes `current_` and runs its handler. On this connection's io thread.
  void dispatch() {
    const auto& req = current_;
    const auto method = req.method;
    auto match = srv_.routes->match(method, req.path);
    switch (match.result) {
    case route_match::outcome::not_found:
      ctx_.route = std::string{unmatched_route};
      series_ = srv_.unmatched_series;
      send(problem_response(protocol::errc::not_found, req, ctx_,
                            "no route matches " + std::string{to_string(method)} + " " + path_));
      return;
    case route_match::outcome::method_not_allowed: {
      ctx_.route = match.path_template;
      series_ = srv_.series_by_template.at(match.path_template);
      response res;
      if (method == verb::options) {
        res.status = 204;
        res.content_type.clear();
      } else {
        res = problem_response(protocol::errc::method_not_allowed, req, ctx_,
                               std::string{to_string(method)} + " is not allowed on "
                                 + match.path_template);
      }
      res.headers.emplace_back("Allow", match.allow);
      send(std::move(res));
      return;
    }
    case route_match::outcome::found:
      break;
    }
    ctx_.route = match.path_template;
    ctx_.params = std::move(match.params);
    series_ = match.matched->metrics_index;
    try {
      match.matched->handler(req, ctx_, make_reply());
    } catch (const std::exception& e) {
      // A handler bug must not take the io thread down; the log has the cause.
      srv_.log->error(protocol::event("handler threw")
                        .add("route", ctx_.route)
                        .add("request_id", ctx_.request_id)
                        .add("what", e.what())
                        .str());
      if (phase_ == phase::handling) {
        send(problem_response(protocol::errc::internal, req, ctx_));
      }
    }
  }

  static bool is_tenant_api(const std::string& path) {
    return path == "/v1" || path.rfind("/v1/", 0) == 0;
  }

  std::function<void(tenant_resolution)> make_continuation() {
    return [gate = srv_.gate, weak = this->weak_from_this()](tenant_resolution resolution) {
      std::shared_lock<std::shared_mutex> lock{gate->mutex};
      if (!gate->open) {
        return;
      }
      if (auto self = weak.lock()) {
        auto ex = self->executor();
        asio::dispatch(ex, [self = std::move(self), r = std::move(resolution)]() mutable {
          self->on_tenant(std::move(r));
        });
      }
    };
  }

  void on_tenant(tenant_resolution resolution) {
    if (phase_ != phase::handling) {
      return;
    }
    if (!resolution.ok()) {
      ctx_.route = std::string{unmatched_route};
      series_ = srv_.unmatched_series;
      auto res = problem_response(resolution.error, current_, ctx_, resolution.detail);
      if (resolution.error == protocol::errc::unauthenticated) {
        res.headers.emplace_back("WWW-Authenticate", current_.header("Authorization").empty()
                                                       ? "Bearer"
                                                       : "Bearer error=\"invalid_token\"");
      } else if (resolution.error == protocol::errc::service_unavailable) {
        res.headers.emplace_back("Retry-After", "1");
      } else if (resolution.error == protocol::errc::rate_limited) {
        res.headers.emplace_back("Retry-After", std::to_string(resolution.rate.reset_s));
      }
      ctx_.rate = std::move(resolution.rate); // a 429 names the bucket that refused
      send(std::move(res));
      return;
    }
    ctx_.tenant_id = std::move(resolution.tenant_id);
    ctx_.rate = std::move(resolution.rate);
    ctx_.who = std::move(resolution.who);
    ctx_.tenant_settings = std::move(resolution.settings);
    dispatch();
  }

  reply_fn make_reply() {
    return [gate = srv_.gate, weak = this->weak_from_this()](response r) {
      std::shared_lock<std::shared_mutex> lock{gate->mutex};
      if (!gate->open) {
        return;
      }
      if (auto self = weak.lock()) {
        auto ex = self->executor();
        asio::dispatch(
          ex, [self = std::move(self), r = std::move(r)]() mutable { self->send(std::move(r)); });
      }
    };
  }

  void record(int status) {
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    srv_.metrics->observe_request(series_, method_index_, status, elapsed);
    if (srv_.requests_log) {
      protocol::log_line line{srv_.format, "request"};
      line.add("method", actors::metrics_registry::methods.at(method_index_))
        .add("path", path_)
        .add("route", ctx_.route)
        .add("status", status)
        .add("duration_ms", std::chrono::duration<double, std::milli>(elapsed).count())
        .add("request_id", ctx_.request_id)
        .add("tenant", ctx_.tenant_id.empty() ? std::string{"-"} : ctx_.tenant_id)
        .add("remote", remote_);
      srv_.requests_log->append(context_index_, line);
    }
  }

  void on_write(beast::error_code ec, bool keep) {
    if (ec) {
      close();
      return;
    }
    if (!keep) {
      linger_close();
      return;
    }
    res_ = {};
    wait();
  }

  // Half-closes, then reads and discards what the client still sends for a moment, so that
  // unread request bytes do not turn our close into a reset that destroys the response.
  void linger_close() {
    phase_ = phase::closed;
    if constexpr (is_tls) {
      // TLS: send close_notify (bounded by the linger timeout), then close.
      lowest().expires_after(linger_timeout);
      stream_.async_shutdown(
        [self = this->shared_from_this()](beast::error_code) { self->close(); });
      return;
    }
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(linger_timeout);
    discard();
  }

  void discard() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(16384),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > linger_max_bytes) {
                                self->close();
                                return;
                              }
                              self->discard();
                            });
  }

  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    phase_ = phase::closed;
    // The source goes now, with what it captured. `piece_` and the serializer stay: a
    // cancelled write still refers to them until its handler has run.
    source_ = nullptr;
    awaiting_ = false;
    lowest().close();
    srv_.remove(this);
  }

  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  Stream stream_;
  server::impl& srv_;
  std::size_t context_index_; // the io_context (and thread) this connection lives on
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  // The streamed response in flight (phase::streaming); the header parts only while written.
  std::optional<bhttp::response<bhttp::empty_body>> stream_res_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_sr_;
  body_source source_;
  std::string piece_;       // the piece being written
  std::uint64_t pulls_ = 0; // source calls so far; names the one `deliver` may answer
  bool awaiting_ = false;   // a source call has not delivered yet
  bool last_piece_ = false;
  bool chunked_ = false;
  bool stream_keep_ = false;
  phase phase_ = phase::idle;
  bool draining_ = false;
  bool closed_ = false;
  std::size_t lingered_ = 0;
  // The request being answered.
  request current_;
  request_context ctx_;
  std::string path_;
  std::string remote_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  std::size_t series_ = 0;
  std::size_t method_index_ = 0;
  std::chrono::steady_clock::time_point started_;
};

} // namespace

void server::impl::do_accept() {
  const auto index = next_context++ % contexts.size();
  acceptor->async_accept(*contexts[index], [this, index](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket), index);
  });
}

void server::impl::on_accept(const beast::error_code& ec, tcp::socket socket, std::size_t index) {
  if (ec == asio::error::operation_aborted || !acceptor->is_open()) {
    return;
  }
  if (ec) {
    // Out of descriptors or memory: back off instead of spinning, and keep serving.
    log->warn(protocol::event("accept failed").add("error", ec.message()).str());
    accept_retry->expires_after(std::chrono::milliseconds{50});
    accept_retry->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) {
        do_accept();
      }
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay{true}, ignored);
  std::shared_ptr<session_base> s;
  bool admitted = false;
  {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    admitted = sessions.size() < options.max_connections && !draining.load();
    if (admitted) {
      if (options.tls) {
        s = std::make_shared<session<tls_stream>>(*this, index, std::move(socket),
                                                  options.tls->ssl);
      } else {
        s = std::make_shared<session<beast::tcp_stream>>(*this, index, std::move(socket));
      }
      sessions.emplace(s.get(), s);
    }
  }
  if (admitted) {
    s->start();
  } else {
    reject_busy(socket); // still ours: only an admitted socket was moved
  }
  do_accept();
}

void server::impl::reject_busy(tcp::socket& socket) {
  beast::error_code ignored;
  if (options.tls) {
    socket.close(ignored); // a plain-text answer would be noise inside a TLS handshake
    return;
  }
  // A fresh socket's send buffer is empty, so this small write does not block.
  protocol::problem p;
  p.code = protocol::errc::service_unavailable;
  p.detail = "the server is at its connection limit";
  p.request_id = protocol::new_request_id();
  const auto body = protocol::render_problem(p);
  const auto text = "HTTP/1.1 503 Service Unavailable\r\nServer: troupe\r\nDate: " + http_date()
                    + "\r\nContent-Type: " + std::string{protocol::problem_content_type}
                    + "\r\nRetry-After: 1\r\nConnection: close\r\nX-Request-ID: " + p.request_id
                    + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  socket.non_blocking(true, ignored);
  socket.write_some(asio::buffer(text), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void server::impl::remove(session_base* s) {
  std::shared_ptr<session_base> last; // destroyed outside the lock
  {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    auto i = sessions.find(s);
    if (i == sessions.end()) {
      return;
    }
    last = std::move(i->second);
    sessions.erase(i);
  }
  sessions_changed.notify_all();
}

void server::impl::arm_log_flush(std::size_t index) {
  auto& timer = *log_timers[index];
  timer.expires_after(std::chrono::milliseconds{100});
  timer.async_wait([this, index](beast::error_code ec) {
    if (!ec) {
      requests_log->flush(index);
      arm_log_flush(index);
    }
  });
}

void server::impl::run_context(std::size_t index) {
  try {
    contexts[index]->run();
  } catch (const std::exception& e) {
    log->error(protocol::event("io thread died")
                 .add("index", static_cast<std::int64_t>(index))
                 .add("what", e.what())
                 .str());
    if (on_fatal) {
      on_fatal(e.what());
    }
  }
}

server::server(server_options options, std::shared_ptr<router> routes,
               std::shared_ptr<actors::metrics_registry> metrics,
               std::shared_ptr<spdlog::logger> log, std::function<void(std::string)> on_fatal)
    : impl_(std::make_shared<impl>()) {
  impl_->options = std::move(options);
  impl_->routes = std::move(routes);
  impl_->metrics = std::move(metrics);
  impl_->log = std::move(log);
  impl_->on_fatal = std::move(on_fatal);
  // One metrics series per route template, shared by the template's methods.
  for (auto& r : impl_->routes->routes()) {
    auto [it, inserted]
      = impl_->series_by_template.emplace(r.path_template, impl_->series_by_template.size());
    if (inserted) {
      it->second = impl_->metrics->add_route(r.path_template);
    }
    r.metrics_index = it->second;
  }
  impl_->unmatched_series = impl_->metrics->add_route(std::string{unmatched_route});
}

server::~server() {
  try {
    shutdown(std::chrono::milliseconds{0});
  } catch (const std::exception& e) {
    // Only thread joins can throw here; a destructor must not let them escape.
    impl_->log->error(protocol::event("server shutdown failed").add("what", e.what()).str());
  }
}

void server::start() {
  auto& st = *impl_;
  const auto threads = std::max<std::uint32_t>(1, st.options.threads);
  for (std::uint32_t i = 0; i < threads; ++i) {
    st.contexts.push_back(std::make_unique<asio::io_context>(1));
    st.guards.push_back(asio::make_work_guard(*st.contexts.back()));
  }
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(st.options.listen_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  const int fd = ::dup(st.options.listen_fd);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "dup");
  }
  st.acceptor = std::make_unique<tcp::acceptor>(*st.contexts[0]);
  st.acceptor->assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
  st.bound_port = st.acceptor->local_endpoint().port();
  st.accept_retry = std::make_unique<asio::steady_timer>(*st.contexts[0]);
  if (st.log->should_log(spdlog::level::info)) {
    st.requests_log = std::make_unique<access_log>(st.contexts.size(), st.format);
    for (std::size_t i = 0; i < st.contexts.size(); ++i) {
      st.log_timers.push_back(std::make_unique<asio::steady_timer>(*st.contexts[i]));
      asio::post(*st.contexts[i], [impl = impl_.get(), i] { impl->arm_log_flush(i); });
    }
  }
  asio::post(*st.contexts[0], [impl = impl_.get()] { impl->do_accept(); });
  for (std::size_t i = 0; i < st.contexts.size(); ++i) {
    st.threads.emplace_back([impl = impl_.get(), i] { impl->run_context(i); });
  }
}

void server::shutdown(std::chrono::milliseconds grace) {
  auto& st = *impl_;
  if (st.stopped.exchange(true) || st.contexts.empty()) {
    return;
  }
  st.draining = true;
  // 1. Stop accepting (on the acceptor's thread; give up waiting if that thread is gone).
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  asio::post(*st.contexts[0], [impl = impl_.get(), closed] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
    impl->accept_retry->cancel();
    closed->set_value();
  });
  done.wait_for(std::chrono::seconds{1});
  // 2. Close idle connections; busy ones close after their response.
  auto each_session = [&st](auto fn) {
    std::vector<std::shared_ptr<session_base>> snapshot;
    {
      std::lock_guard<std::mutex> guard{st.sessions_mutex};
      for (auto& entry : st.sessions) {
        snapshot.push_back(entry.second);
      }
    }
    for (auto& s : snapshot) {
      asio::post(s->executor(), [s, fn] { fn(*s); });
    }
  };
  each_session([](session_base& s) { s.drain(); });
  auto wait_for_sessions = [&st](std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{st.sessions_mutex};
    return st.sessions_changed.wait_for(lock, limit, [&st] { return st.sessions.empty(); });
  };
  if (!wait_for_sessions(grace)) {
    std::size_t left = 0;
    {
      std::lock_guard<std::mutex> guard{st.sessions_mutex};
      left = st.sessions.size();
    }
    st.log->warn(protocol::event("shutdown grace expired, closing connections")
                   .add("open", static_cast<std::uint64_t>(left))
                   .str());
    each_session([](session_base& s) { s.force_close(); });
    wait_for_sessions(std::chrono::milliseconds{1000});
  }
  // 3. No reply may post into a context from now on; then stop and join the io threads.
  {
    std::unique_lock<std::shared_mutex> lock{st.gate->mutex};
    st.gate->open = false;
  }
  st.guards.clear();
  for (auto& context : st.contexts) {
    context->stop();
  }
  for (auto& thread : st.threads) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  // 4. Tear down in dependency order: sessions and the acceptor before their contexts;
  //    destroying a context destroys the handlers still queued in it.
  {
    std::lock_guard<std::mutex> guard{st.sessions_mutex};
    st.sessions.clear();
  }
  if (st.requests_log) {
    for (std::size_t i = 0; i < st.contexts.size(); ++i) {
      st.requests_log->flush(i); // the io threads are gone: nothing else touches the buffers
    }
  }
  st.log_timers.clear();
  st.accept_retry.reset();
  st.acceptor.reset();
  st.contexts.clear();
}

std::uint16_t server::port() const {
  return impl_->bound_port;
}

} // namespace troupe::http
