#include "http/router.hpp"

#include "protocol/crypto.hpp"

#include <algorithm>
#include <stdexcept>

namespace troupe::http {

namespace {

// Splits "/a/b" into {"a", "b"}; "/" into {""}. The leading '/' is required.
bool split_path(std::string_view path, std::vector<std::string_view>& out) {
  if (path.empty() || path.front() != '/') {
    return false;
  }
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      return true;
    }
    path.remove_prefix(slash + 1);
  }
}

} // namespace

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    const int hi = protocol::crypto::hex_digit(in[i + 1]);
    const int lo = protocol::crypto::hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

void router::add(route r) {
  std::vector<std::string_view> parts;
  if (!split_path(r.path_template, parts)) {
    throw std::invalid_argument("route template must start with '/': " + r.path_template);
  }
  compiled c;
  for (const auto part : parts) {
    segment seg;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      seg.is_param = true;
      seg.text = std::string{part.substr(1, part.size() - 2)};
    } else if (part.find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("malformed route template: " + r.path_template);
    } else {
      seg.text = std::string{part};
    }
    c.segments.push_back(std::move(seg));
  }
  for (const auto& existing : routes_) {
    if (existing.method == r.method && existing.path_template == r.path_template) {
      throw std::invalid_argument("duplicate route: " + std::string{to_string(r.method)} + " "
                                  + r.path_template);
    }
  }
  c.route_index = routes_.size();
  routes_.push_back(std::move(r));
  compiled_.push_back(std::move(c));
}

route_match router::match(verb method, std::string_view path) const {
  route_match result;
  std::vector<std::string_view> raw;
  if (!split_path(path, raw)) {
    return result;
  }
  std::vector<std::string> decoded(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (!percent_decode(raw[i], decoded[i])) {
      return result;
    }
  }
  // Every template that matches the path, most specific first.
  std::vector<const compiled*> candidates;
  for (const auto& c : compiled_) {
    if (c.segments.size() != decoded.size()) {
      continue;
    }
    bool ok = true;
    for (std::size_t i = 0; ok && i < decoded.size(); ++i) {
      const auto& seg = c.segments[i];
      ok = seg.is_param ? !decoded[i].empty() : seg.text == decoded[i];
    }
    if (ok) {
      candidates.push_back(&c);
    }
  }
  if (candidates.empty()) {
    return result;
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const auto* a, const auto* b) {
    for (std::size_t i = 0; i < a->segments.size(); ++i) {
      if (a->segments[i].is_param != b->segments[i].is_param) {
        return !a->segments[i].is_param; // a literal here makes `a` more specific
      }
    }
    return false;
  });
  const verb wanted = method == verb::head ? verb::get : method;
  for (const auto* c : candidates) {
    const auto& r = routes_[c->route_index];
    if (r.method != wanted) {
      continue;
    }
    result.result = route_match::outcome::found;
    result.matched = &r;
    result.path_template = r.path_template;
    for (std::size_t i = 0; i < c->segments.size(); ++i) {
      if (c->segments[i].is_param) {
        result.params.emplace_back(c->segments[i].text, std::move(decoded[i]));
      }
    }
    break;
  }
  // Allow: the methods of every matching template, in a stable order.
  std::vector<bool> allowed(static_cast<std::size_t>(verb::other) + 1, false);
  for (const auto* c : candidates) {
    const auto m = routes_[c->route_index].method;
    allowed[static_cast<std::size_t>(m)] = true;
    if (m == verb::get) {
      allowed[static_cast<std::size_t>(verb::head)] = true;
    }
  }
  allowed[static_cast<std::size_t>(verb::options)] = true;
  for (std::size_t i = 0; i < static_cast<std::size_t>(verb::other); ++i) {
    if (allowed[i]) {
      if (!result.allow.empty()) {
        result.allow += ", ";
      }
      result.allow += to_string(static_cast<verb>(i));
    }
  }
  if (result.result != route_match::outcome::found) {
    result.result = route_match::outcome::method_not_allowed;
    result.path_template = routes_[candidates.front()->route_index].path_template;
  }
  return result;
}

} // namespace troupe::http
