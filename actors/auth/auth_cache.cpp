#include "actors/auth/auth_cache.hpp"

#include <algorithm>

namespace troupe::actors {

namespace {

template <class Map>
auto* find_in(const Map& map, const std::string& key) {
  auto i = map.find(key);
  return i == map.end() ? nullptr : &i->second;
}

} // namespace

template <class Map, class T>
void auth_cache::put(Map& map, const std::string& key, T value) {
  if (map.size() >= capacity_ && map.count(key) == 0) {
    map.clear();
  }
  map[key] = std::move(value);
}

const token_claims* auth_cache::token(const std::string& digest) const {
  return find_in(tokens_, digest);
}

void auth_cache::put_token(const std::string& digest, token_claims claims) {
  put(tokens_, digest, std::move(claims));
}

const session_state* auth_cache::session(const std::string& id) const {
  return find_in(sessions_, id);
}

void auth_cache::put_session(const std::string& id, session_state s,
                             std::uint64_t loaded_at_epoch) {
  if (loaded_at_epoch == epoch_) {
    put(sessions_, id, std::move(s));
  }
}

const user_state* auth_cache::user(const std::string& id) const {
  return find_in(users_, id);
}

void auth_cache::put_user(const std::string& id, user_state u, std::uint64_t loaded_at_epoch) {
  if (loaded_at_epoch == epoch_) {
    put(users_, id, std::move(u));
  }
}

const api_key_state* auth_cache::key(const std::string& digest) const {
  return find_in(keys_, digest);
}

void auth_cache::put_key(const std::string& digest, api_key_state k,
                         std::uint64_t loaded_at_epoch) {
  if (loaded_at_epoch == epoch_) {
    put(keys_, digest, std::move(k));
  }
}

void auth_cache::invalidate(const std::string& what) {
  ++epoch_;
  if (what == "roles") {
    users_.clear(); // every user's permissions may depend on the roles
    return;
  }
  const auto colon = what.find(':');
  if (colon == std::string::npos) {
    return;
  }
  const auto kind = what.substr(0, colon);
  const auto id = what.substr(colon + 1);
  if (kind == "session") {
    sessions_.erase(id);
  } else if (kind == "user") {
    users_.erase(id);
    for (auto i = sessions_.begin(); i != sessions_.end();) {
      i = i->second.user_id == id ? sessions_.erase(i) : std::next(i);
    }
  } else if (kind == "api_key") {
    for (auto i = keys_.begin(); i != keys_.end();) {
      i = i->second.id == id ? keys_.erase(i) : std::next(i);
    }
  }
}

void login_throttle::trim(std::deque<clock::time_point>& times, clock::time_point now) const {
  while (!times.empty() && now - times.front() >= window_) {
    times.pop_front();
  }
}

std::uint32_t login_throttle::wait_seconds(const std::string& account, clock::time_point now) {
  auto i = failures_.find(account);
  if (i == failures_.end()) {
    return 0;
  }
  trim(i->second, now);
  if (i->second.size() < max_failures_) {
    if (i->second.empty()) {
      failures_.erase(i);
    }
    return 0;
  }
  const auto left = i->second.front() + window_ - now;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, (ms + 999) / 1000));
}

void login_throttle::failed(const std::string& account, clock::time_point now) {
  if (failures_.size() >= max_accounts_ && failures_.count(account) == 0) {
    for (auto i = failures_.begin(); i != failures_.end();) {
      trim(i->second, now);
      i = i->second.empty() ? failures_.erase(i) : std::next(i);
    }
    if (failures_.size() >= max_accounts_) {
      // Still full of live failures (a flood): forget the half that failed longest ago.
      std::vector<std::pair<clock::time_point, std::string>> by_age;
      by_age.reserve(failures_.size());
      for (const auto& [name, times] : failures_) {
        by_age.emplace_back(times.back(), name);
      }
      std::nth_element(by_age.begin(), by_age.begin() + by_age.size() / 2, by_age.end());
      for (std::size_t k = 0; k < by_age.size() / 2; ++k) {
        failures_.erase(by_age[k].second);
      }
    }
  }
  auto& times = failures_[account];
  trim(times, now);
  times.push_back(now);
  while (times.size() > max_failures_) {
    times.pop_front(); // only the newest max_failures matter
  }
}

void login_throttle::succeeded(const std::string& account) {
  failures_.erase(account);
}

} // namespace troupe::actors
