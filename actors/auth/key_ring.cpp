#include "actors/auth/key_ring.hpp"

#include "protocol/crypto.hpp"
#include "storage/auth.hpp"

#include <algorithm>

namespace troupe::actors {

std::shared_ptr<const key_snapshot> key_ring::current() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return current_;
}

void key_ring::publish(std::shared_ptr<const key_snapshot> snapshot) {
  std::lock_guard<std::mutex> guard{mutex_};
  current_ = std::move(snapshot);
}

key_plan plan_keys(const std::vector<storage::signing_key_row>& keys, std::int64_t now,
                   std::int64_t rotation_s, std::int64_t access_ttl_s) {
  constexpr std::int64_t skew_s = 60;
  key_plan plan;
  const storage::signing_key_row* newest = nullptr;
  for (const auto& k : keys) {
    if (!k.retired_at && (newest == nullptr || k.created_at >= newest->created_at)) {
      newest = &k;
    }
  }
  if (newest == nullptr || now - newest->created_at >= rotation_s) {
    plan.generate = true;
  } else {
    plan.signer = newest->kid;
    plan.valid.push_back(newest->kid);
  }
  for (const auto& k : keys) {
    if (newest != nullptr && !plan.generate && k.kid == newest->kid) {
      continue;
    }
    // A key that is not the signer stopped signing when it was retired or, if it never was
    // (another node's rotation is not committed yet), it may sign until now.
    const auto stopped = k.retired_at.value_or(now);
    if (now < stopped + access_ttl_s + skew_s) {
      plan.valid.push_back(k.kid);
    }
  }
  return plan;
}

std::string key_id(const std::string& public_key) {
  return protocol::crypto::base64url(protocol::crypto::sha256(public_key).substr(0, 16));
}

} // namespace troupe::actors
