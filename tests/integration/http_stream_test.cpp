#define CAF_SUITE http.stream

#include "actors/metrics/metrics_registry.hpp"
#include "http/handler.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <caf/test/unit_test.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

using namespace troupe;
using namespace troupe::http;
using namespace std::chrono_literals;

namespace {

// A thread that runs tasks in order: what a CAF actor answering from its own thread would be.
class worker {
public:
  worker() : thread_([this] { run(); }) {}

  ~worker() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stop_ = true;
    }
    ready_.notify_all();
    thread_.join();
  }

  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

private:
  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    for (;;) {
      ready_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        return; // stopping, and everything posted ran
      }
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_; // last: starts once the rest is built
};

// Piece `i` of a streamed body: one NDJSON line of exactly `size` bytes (at least 16).
std::string piece(int i, std::size_t size) {
  std::string line = "{\"i\":" + std::to_string(i) + ",\"pad\":\"";
  line.append(size - line.size() - 3, 'x');
  line += "\"}\n";
  return line;
}

std::string expected_body(int pieces, std::size_t size) {
  std::string body;
  for (int i = 0; i < pieces; ++i) {
    body += piece(i, size);
  }
  return body;
}

// The integer query parameter `name`, or `fallback`.
long query_int(std::string_view query, std::string_view name, long fallback) {
  std::size_t at = 0;
  while (at < query.size()) {
    auto end = query.find('&', at);
    if (end == std::string_view::npos) {
      end = query.size();
    }
    const auto pair = query.substr(at, end - at);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::strtol(std::string{pair.substr(eq + 1)}.c_str(), nullptr, 10);
    }
    at = end + 1;
  }
  return fallback;
}

// What the streamed route's sources did, as seen from their side.
struct probe {
  std::atomic<int> calls{0};         // source calls, all streams together
  std::atomic<int> outstanding{0};   // calls whose piece was not delivered yet
  std::atomic<int> overlaps{0};      // calls made while another was outstanding
  std::atomic<int> sources_alive{0}; // sources not destroyed yet
};

// Counts one live source in `probe::sources_alive` for as long as it exists.
struct source_token {
  explicit source_token(probe& p) : counts(p) {
    ++counts.sources_alive;
  }
  ~source_token() {
    --counts.sources_alive;
  }
  source_token(const source_token&) = delete;
  source_token& operator=(const source_token&) = delete;
  probe& counts;
};

// One parsed HTTP response header.
struct response_head {
  int status = 0;
  std::string text; // the whole header block

  // The value of the first field `name` (case-insensitive), or nullopt.
  std::optional<std::string> find(std::string_view name) const {
    std::size_t at = text.find("\r\n");
    while (at != std::string::npos && at + 2 < text.size()) {
      const auto start = at + 2;
      const auto end = text.find("\r\n", start);
      const auto line = std::string_view{text}.substr(start, end - start);
      const auto colon = line.find(':');
      if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') {
          value.remove_prefix(1);
        }
        return std::string{value};
      }
      at = end;
    }
    return std::nullopt;
  }

  bool has(std::string_view name) const {
    return find(name).has_value();
  }

  std::string field(std::string_view name) const {
    return find(name).value_or(std::string{});
  }
};

// A chunked body as the client received it.
struct chunked_body {
  std::string data;
  std::size_t chunks = 0;
  bool terminated = false; // the last chunk (0\r\n\r\n) arrived
  bool well_formed = true; // every chunk's framing was right
};

// A blocking HTTP client on one connection, plain or TLS (any certificate goes); reads time
// out after 10 s.
class client {
public:
  explicit client(std::uint16_t port, int receive_buffer = 0, bool tls = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    CAF_REQUIRE(fd_ >= 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CAF_REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    if (tls) {
      tls_context_ = SSL_CTX_new(TLS_client_method());
      CAF_REQUIRE(tls_context_ != nullptr);
      SSL_CTX_set_verify(tls_context_, SSL_VERIFY_NONE, nullptr);
      tls_ = SSL_new(tls_context_);
      CAF_REQUIRE(tls_ != nullptr);
      SSL_set_fd(tls_, fd_);
      CAF_REQUIRE(SSL_connect(tls_) == 1);
    }
  }

  ~client() {
    close();
  }

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  void close() {
    if (tls_ != nullptr) {
      SSL_free(tls_);
      SSL_CTX_free(tls_context_);
      tls_ = nullptr;
      tls_context_ = nullptr;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  void send(std::string_view text) {
    while (!text.empty()) {
      const auto n = tls_ != nullptr ? SSL_write(tls_, text.data(), static_cast<int>(text.size()))
                                     : ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL);
      CAF_REQUIRE(n > 0);
      text.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  response_head read_head() {
    response_head head;
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      CAF_REQUIRE(fill());
    }
    head.text = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    CAF_REQUIRE(head.text.rfind("HTTP/1.", 0) == 0);
    head.status = std::atoi(head.text.c_str() + 9);
    return head;
  }

  // Reads a chunked body to its last chunk, or to the end of the connection.
  chunked_body read_chunked() {
    chunked_body body;
    for (;;) {
      std::string line;
      if (!read_line(line)) {
        return body;
      }
      char* end = nullptr;
      const auto size = std::strtoul(line.c_str(), &end, 16);
      if (line.empty() || *end != '\0') {
        body.well_formed = false;
        return body;
      }
      if (size == 0) {
        std::string trailer_end;
        body.terminated = read_line(trailer_end) && trailer_end.empty();
        body.well_formed = body.well_formed && body.terminated;
        return body;
      }
      while (buffer_.size() < size + 2) {
        if (!fill()) {
          body.data += buffer_.substr(0, size);
          buffer_.clear();
          return body;
        }
      }
      body.data.append(buffer_, 0, size);
      body.well_formed = body.well_formed && buffer_.compare(size, 2, "\r\n") == 0;
      buffer_.erase(0, size + 2);
      ++body.chunks;
    }
  }

  // Reads `n` body bytes (a Content-Length body).
  std::string read_exactly(std::size_t n) {
    while (buffer_.size() < n) {
      CAF_REQUIRE(fill());
    }
    auto out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  // Reads until the server closes the connection.
  std::string read_to_end() {
    while (fill()) {
    }
    auto out = std::move(buffer_);
    buffer_.clear();
    return out;
  }

  // Reads about `n` bytes (or more), whatever they are.
  void read_some(std::size_t n) {
    while (buffer_.size() < n) {
      CAF_REQUIRE(fill());
    }
  }

  // True if the server closed the connection and sent nothing more.
  bool closed_by_server() {
    return !fill() && buffer_.empty();
  }

  // TLS: the server ended the connection with close_notify (not just a TCP close).
  bool closed_cleanly() const {
    return closed_cleanly_;
  }

private:
  bool read_line(std::string& line) {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) {
      if (!fill()) {
        return false;
      }
    }
    line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return true;
  }

  // Appends what arrives to the buffer; false at the end of the connection (or a reset).
  bool fill() {
    char chunk[65536];
    if (tls_ != nullptr) {
      const auto n = SSL_read(tls_, chunk, sizeof(chunk));
      if (n <= 0) {
        const auto error = SSL_get_error(tls_, n);
        if (error == SSL_ERROR_WANT_READ) {
          CAF_FAIL("no answer from the server within 10 s");
        }
        closed_cleanly_ = error == SSL_ERROR_ZERO_RETURN;
        return false;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    const auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      CAF_FAIL("no answer from the server within 10 s");
    }
    if (n <= 0) {
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL_CTX* tls_context_ = nullptr;
  SSL* tls_ = nullptr;
  bool closed_cleanly_ = false;
  std::string buffer_;
};

// A fresh self-signed P-256 certificate for "localhost", loaded as the server loads its own.
std::shared_ptr<tls_context> make_test_tls() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  CAF_REQUIRE(key != nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  auto* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  CAF_REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  char dir_template[] = "/tmp/troupe-stream-test-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  CAF_REQUIRE(dir != nullptr);
  const std::string cert_file = std::string{dir} + "/cert.pem";
  const std::string key_file = std::string{dir} + "/key.pem";
  FILE* out = std::fopen(cert_file.c_str(), "w");
  PEM_write_X509(out, cert);
  std::fclose(out);
  out = std::fopen(key_file.c_str(), "w");
  PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(out);
  X509_free(cert);
  EVP_PKEY_free(key);
  std::string error;
  auto tls = load_tls_context(cert_file, key_file, error);
  std::remove(cert_file.c_str());
  std::remove(key_file.c_str());
  ::rmdir(dir);
  CAF_REQUIRE_EQUAL(error, "");
  return tls;
}

std::string get(std::string_view target, std::string_view version = "HTTP/1.1",
                std::string_view method = "GET") {
  return std::string{method} + " " + std::string{target} + " " + std::string{version}
         + "\r\nHost: localhost\r\n\r\n";
}

// Polls `condition` every 10 ms for up to `limit`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Waits until `value` stops changing for `quiet`, at most 5 s; returns the value.
int settled(const std::atomic<int>& value, std::chrono::milliseconds quiet = 300ms) {
  auto last = value.load();
  auto since = std::chrono::steady_clock::now();
  const auto deadline = since + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    const auto now = value.load();
    if (now != last) {
      last = now;
      since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - since >= quiet) {
      break;
    }
  }
  return last;
}

// A real server on 127.0.0.1 with a streamed route whose pieces come from another thread:
// GET /export?pieces=N&size=S (N pieces of S bytes; pieces=-1 streams forever; fail=K fails
// instead of piece K; hold=K delivers piece K only once `release` is set), GET /ping, and
// GET /empty (a 204 that carries a stream).
struct fixture {
  probe counts;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool released_once = false; // the test thread alone releases
  std::shared_ptr<router> routes = std::make_shared<router>();
  std::shared_ptr<actors::metrics_registry> metrics = std::make_shared<actors::metrics_registry>();
  std::atomic<bool> fatal{false};
  std::unique_ptr<server> srv;
  std::uint16_t port = 0;
  worker producer; // destroyed first, after stop(): its late deliveries find the gate closed

  fixture() {
    routes->add({verb::get, "/export",
                 [this](const request& req, const request_context&, reply_fn reply) {
                   reply(export_response(req));
                 },
                 "a streamed NDJSON export"});
    routes->add({verb::get, "/ping",
                 [](const request&, const request_context&, reply_fn reply) {
                   reply(json_response(200, "\"pong\""));
                 },
                 "a plain answer"});
    routes->add({verb::get, "/empty",
                 [this](const request&, const request_context&, reply_fn reply) {
                   response res;
                   res.status = 204;
                   res.content_type.clear();
                   auto token = std::make_shared<source_token>(counts);
                   res.stream = [this, token](std::function<void(body_chunk)> deliver) {
                     ++counts.calls;
                     deliver({"never", true, false});
                   };
                   reply(std::move(res));
                 },
                 "no content, whatever the stream"});
    start();
  }

  ~fixture() {
    stop();
  }

  response export_response(const request& req) {
    const int pieces = static_cast<int>(query_int(req.query, "pieces", 1000));
    const auto size = static_cast<std::size_t>(query_int(req.query, "size", 1024));
    const int fail_at = static_cast<int>(query_int(req.query, "fail", -1));
    const int hold_at = static_cast<int>(query_int(req.query, "hold", -1));
    response res;
    res.content_type = "application/x-ndjson";
    auto token = std::make_shared<source_token>(counts);
    auto next = std::make_shared<int>(0); // only the session's io thread calls the source
    res.stream = [this, token, next, pieces, size, fail_at,
                  hold_at](std::function<void(body_chunk)> deliver) {
      ++counts.calls;
      if (counts.outstanding.fetch_add(1) != 0) {
        ++counts.overlaps;
      }
      const int i = (*next)++;
      producer.post([this, i, pieces, size, fail_at, hold_at, deliver = std::move(deliver)] {
        if (i == hold_at) {
          released.wait();
        }
        body_chunk out;
        if (i == fail_at) {
          out.failed = true;
        } else {
          out.data = piece(i, size);
          out.last = i + 1 == pieces;
        }
        --counts.outstanding;
        deliver(std::move(out));
      });
    };
    return res;
  }

  void start(std::shared_ptr<tls_context> tls = nullptr) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    CAF_REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CAF_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    CAF_REQUIRE(::listen(fd, 64) == 0);
    server_options options;
    options.listen_fd = fd;
    options.threads = 2;
    options.read_timeout = 5s;
    options.idle_timeout = 5s;
    options.tls = std::move(tls);
    auto log
      = std::make_shared<spdlog::logger>("http", std::make_shared<spdlog::sinks::null_sink_mt>());
    log->set_level(spdlog::level::warn); // no access log on stdout
    srv = std::make_unique<server>(options, routes, metrics, log,
                                   [this](const std::string&) { fatal = true; });
    srv->start();
    ::close(fd); // the server has its own duplicate
    port = srv->port();
  }

  void stop() {
    if (srv) {
      srv->shutdown(2000ms);
      srv.reset();
    }
    release_held(); // a held piece must not keep the producer from stopping
  }

  void release_held() {
    if (!released_once) {
      released_once = true;
      release.set_value();
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(stream_tests, fixture)

CAF_TEST(a streamed body arrives chunked and the connection stays usable) {
  client c{port};
  c.send(get("/export?pieces=1000&size=1024"));
  const auto head = c.read_head();
  CAF_CHECK_EQUAL(head.status, 200);
  CAF_CHECK(iequals(head.field("Transfer-Encoding"), "chunked"));
  CAF_CHECK(!head.has("Content-Length"));
  CAF_CHECK_EQUAL(head.field("Content-Type"), "application/x-ndjson");
  const auto body = c.read_chunked();
  CAF_CHECK(body.terminated);
  CAF_CHECK(body.well_formed);
  CAF_CHECK_EQUAL(body.chunks, 1000u);
  CAF_CHECK_EQUAL(body.data.size(), 1000u * 1024u);
  CAF_CHECK(body.data == expected_body(1000, 1024));
  CAF_CHECK_EQUAL(counts.calls.load(), 1000);

  c.send(get("/ping"));
  const auto second = c.read_head();
  CAF_CHECK_EQUAL(second.status, 200);
  CAF_CHECK_EQUAL(c.read_exactly(std::stoul(second.field("Content-Length"))), "\"pong\"");
  CAF_CHECK(eventually([this] { return counts.sources_alive == 0; }));
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(the source is not called again before its piece was delivered and written) {
  // A small receive window and a client that stops reading: the server's socket buffer fills,
  // the write waits, and so must the source.
  constexpr int pieces = 1000;
  constexpr std::size_t size = 65536;
  client c{port, 16384};
  c.send(get("/export?pieces=" + std::to_string(pieces) + "&size=" + std::to_string(size)));
  CAF_CHECK_EQUAL(c.read_head().status, 200);
  const auto stalled_at = settled(counts.calls);
  CAF_MESSAGE("the source was called " << stalled_at << " times while the client did not read");
  CAF_CHECK_LESS(stalled_at, pieces);

  const auto body = c.read_chunked();
  CAF_CHECK(body.terminated);
  CAF_CHECK(body.data == expected_body(pieces, size));
  CAF_CHECK_EQUAL(counts.calls.load(), pieces);
  CAF_CHECK_EQUAL(counts.overlaps.load(), 0);
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(a failed piece closes the connection without the last chunk) {
  client c{port};
  c.send(get("/export?pieces=100&size=512&fail=10"));
  CAF_CHECK_EQUAL(c.read_head().status, 200);
  const auto body = c.read_chunked();
  CAF_CHECK(!body.terminated);
  CAF_CHECK(body.well_formed);
  CAF_CHECK_EQUAL(body.chunks, 10u);
  CAF_CHECK(body.data == expected_body(10, 512));
  CAF_CHECK(c.closed_by_server());
  CAF_CHECK_EQUAL(counts.calls.load(), 11);
  CAF_CHECK(eventually([this] { return counts.sources_alive == 0; }));
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(a HEAD request gets the header alone and never calls the source) {
  client c{port};
  c.send(get("/export?pieces=5", "HTTP/1.1", "HEAD"));
  const auto head = c.read_head();
  CAF_CHECK_EQUAL(head.status, 200);
  CAF_CHECK(!head.has("Content-Length"));
  // Nothing follows the header: the next answer on the connection is the next request's.
  c.send(get("/ping"));
  const auto next = c.read_head();
  CAF_CHECK_EQUAL(next.status, 200);
  CAF_CHECK_EQUAL(c.read_exactly(std::stoul(next.field("Content-Length"))), "\"pong\"");
  CAF_CHECK_EQUAL(counts.calls.load(), 0);
  CAF_CHECK(eventually([this] { return counts.sources_alive == 0; }));
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(a 204 response ignores its stream) {
  client c{port};
  c.send(get("/empty"));
  const auto head = c.read_head();
  CAF_CHECK_EQUAL(head.status, 204);
  CAF_CHECK(!head.has("Transfer-Encoding"));
  CAF_CHECK(!head.has("Content-Length"));
  c.send(get("/ping"));
  CAF_CHECK_EQUAL(c.read_head().status, 200);
  CAF_CHECK_EQUAL(counts.calls.load(), 0);
  CAF_CHECK(eventually([this] { return counts.sources_alive == 0; }));
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(an HTTP 1.0 client gets a body that ends with the connection) {
  client c{port};
  c.send(get("/export?pieces=200&size=700", "HTTP/1.0"));
  const auto head = c.read_head();
  CAF_CHECK_EQUAL(head.status, 200);
  CAF_CHECK(head.text.rfind("HTTP/1.0 200", 0) == 0);
  CAF_CHECK(!head.has("Transfer-Encoding"));
  CAF_CHECK(!head.has("Content-Length"));
  CAF_CHECK(iequals(head.field("Connection"), "close"));
  const auto body = c.read_to_end(); // the end of the connection is the end of the body
  CAF_CHECK_EQUAL(body.size(), 200u * 700u);
  CAF_CHECK(body == expected_body(200, 700));
  CAF_CHECK_EQUAL(counts.calls.load(), 200);
  c.close(); // or the server lingers for the client's close
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(a client leaving mid stream stops the source and the server keeps serving) {
  {
    client c{port};
    c.send(get("/export?pieces=-1&size=1024")); // never ends by itself
    CAF_CHECK_EQUAL(c.read_head().status, 200);
    c.read_some(100 * 1024);
    CAF_CHECK(counts.sources_alive == 1);
  } // closing with unread data resets the connection
  CAF_CHECK(eventually([this] { return counts.sources_alive == 0; }));
  const auto calls = settled(counts.calls);
  CAF_MESSAGE("the source was called " << calls << " times");
  std::this_thread::sleep_for(100ms);
  CAF_CHECK_EQUAL(counts.calls.load(), calls);
  CAF_CHECK_EQUAL(counts.overlaps.load(), 0);

  client fresh{port};
  fresh.send(get("/ping"));
  CAF_CHECK_EQUAL(fresh.read_head().status, 200);
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST(a shutdown lets a running stream finish and then closes its connection) {
  client c{port};
  c.send(get("/export?pieces=50&size=1024&hold=20"));
  const auto head = c.read_head();
  CAF_CHECK_EQUAL(head.status, 200);
  CAF_CHECK(!iequals(head.field("Connection"), "close"));
  CAF_CHECK(eventually([this] { return counts.calls == 21; }));
  auto stopping = std::async(std::launch::async, [this] {
    const auto begun = std::chrono::steady_clock::now();
    srv->shutdown(5000ms);
    return std::chrono::steady_clock::now() - begun;
  });
  // Once nobody can connect any more, the drain is on its way to the streaming session.
  CAF_CHECK(eventually([this] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0;
    ::close(fd);
    return refused;
  }));
  std::this_thread::sleep_for(100ms);
  release_held();
  const auto body = c.read_chunked();
  CAF_CHECK(body.terminated);
  CAF_CHECK(body.data == expected_body(50, 1024));
  CAF_CHECK(c.closed_by_server());
  c.close();                          // or the server lingers for the client's close
  CAF_CHECK(stopping.get() < 4000ms); // the stream ended the drain, not the 5 s grace
  CAF_CHECK(!fatal);
}

CAF_TEST(a streamed body works over TLS too) {
  stop();
  start(make_test_tls());
  {
    client c{port, 0, true};
    c.send(get("/export?pieces=1000&size=1024"));
    const auto head = c.read_head();
    CAF_CHECK_EQUAL(head.status, 200);
    CAF_CHECK(iequals(head.field("Transfer-Encoding"), "chunked"));
    const auto body = c.read_chunked();
    CAF_CHECK(body.terminated);
    CAF_CHECK(body.well_formed);
    CAF_CHECK(body.data == expected_body(1000, 1024));
    c.send(get("/ping"));
    CAF_CHECK_EQUAL(c.read_head().status, 200);
  }
  {
    client c{port, 0, true};
    c.send(get("/export?pieces=100&size=1024", "HTTP/1.0"));
    CAF_CHECK_EQUAL(c.read_head().status, 200);
    CAF_CHECK(c.read_to_end() == expected_body(100, 1024));
    CAF_CHECK(c.closed_cleanly()); // close_notify: the body is complete, not cut
  }
  {
    client c{port, 0, true};
    c.send(get("/export?pieces=100&size=512&fail=10"));
    CAF_CHECK_EQUAL(c.read_head().status, 200);
    const auto body = c.read_chunked();
    CAF_CHECK(!body.terminated);
    CAF_CHECK(body.data == expected_body(10, 512));
    CAF_CHECK(!c.closed_cleanly()); // no close_notify: TLS shows the truncation too
  }
  CAF_CHECK_EQUAL(counts.overlaps.load(), 0);
  stop();
  CAF_CHECK(!fatal);
}

CAF_TEST_FIXTURE_SCOPE_END()
