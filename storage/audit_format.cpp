#include "storage/audit_format.hpp"

#include "protocol/crypto.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace troupe::storage::audit_format {

namespace {

namespace crypto = protocol::crypto;

std::string normalized(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    if (c == '-') {
      out.push_back('_');
    } else {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

json null_or(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

// Escapes a member name for a JSON pointer (RFC 6901).
std::string pointer_token(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct sealer {
  const entry_input& in;
  const std::function<data_key(const std::string&)>& key_for;
  std::map<std::string, data_key> keys; // by subject, fetched once per entry
  json encrypted = json::array();

  // Replaces `value` (at `pointer`) with its sealed form under `subject`'s key.
  void seal(json& value, const std::string& pointer, const std::string& subject) {
    auto it = keys.find(subject);
    if (it == keys.end()) {
      it = keys.emplace(subject, key_for(subject)).first;
    }
    if (it->second.key.empty()) {
      value = "[erased]"; // the subject was erased: nothing of theirs is stored any more
      return;
    }
    const auto plain = value.dump(-1, ' ', false, json::error_handler_t::replace);
    value = it->second.id + "."
            + crypto::base64url(
              crypto::seal(it->second.key, plain, field_aad(in.tenant_id, in.id, pointer)));
    encrypted.push_back(pointer);
  }

  // Seals the personal members of `value` (objects at any depth).
  void walk(json& value, const std::string& pointer, const std::string& subject) {
    if (value.is_object()) {
      for (auto& [name, member] : value.items()) {
        const auto child = pointer + "/" + pointer_token(name);
        if (is_personal_field(name, in.change.resource_type, in.change.personal)) {
          if (!member.is_null()) {
            seal(member, child, subject);
          }
        } else {
          walk(member, child, subject);
        }
      }
    } else if (value.is_array()) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        walk(value[i], pointer + "/" + std::to_string(i), subject);
      }
    }
  }
};

} // namespace

const std::string& genesis_hash() {
  static const std::string zeros(32, '\0');
  return zeros;
}

bool is_secret_field(std::string_view raw) {
  const auto name = normalized(raw);
  static constexpr std::array<std::string_view, 14> parts{
    "password",      "passwd",      "secret",      "token",       "api_key",
    "apikey",        "private_key", "signing_key", "totp",        "recovery_code",
    "authorization", "cookie",      "credential",  "key_material"};
  if (std::any_of(parts.begin(), parts.end(), [&](auto p) { return contains(name, p); })) {
    return true;
  }
  return name == "key" || name == "hash" || name == "kek" || ends_with(name, "_hash")
         || ends_with(name, "_key") || name == "mfa_code";
}

bool is_personal_field(std::string_view raw, std::string_view resource_type,
                       const std::vector<std::string>& extra) {
  const auto name = normalized(raw);
  if (std::any_of(extra.begin(), extra.end(),
                  [&](const auto& e) { return normalized(e) == name; })) {
    return true;
  }
  static constexpr std::array<std::string_view, 12> exact{
    "email",     "emails",       "phone",      "phone_number", "first_name", "last_name",
    "full_name", "display_name", "given_name", "family_name",  "ip",         "user_agent"};
  if (std::find(exact.begin(), exact.end(), name) != exact.end()) {
    return true;
  }
  if (ends_with(name, "_email") || ends_with(name, "_phone") || ends_with(name, "_ip")) {
    return true;
  }
  // A user's name is personal; a tenant's or a role's is not.
  return name == "name" && resource_type == "user";
}

json redact(const json& value) {
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [name, member] : value.items()) {
      out[name] = is_secret_field(name) ? json("[redacted]") : redact(member);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const auto& member : value) {
      out.push_back(redact(member));
    }
    return out;
  }
  return value;
}

std::string origin_subject(const protocol::audit_origin& origin) {
  if (!origin.subject.empty()) {
    return origin.subject;
  }
  if ((origin.actor_type == "user" || origin.actor_type == "api_key") && !origin.actor_id.empty()) {
    return origin.actor_id;
  }
  return "tenant";
}

std::string change_subject(const protocol::audit_origin& origin,
                           const protocol::audit_change& change) {
  if (!change.subject.empty()) {
    return change.subject;
  }
  if (change.resource_type == "user" && !change.resource_id.empty()) {
    return change.resource_id;
  }
  return origin_subject(origin);
}

std::string field_aad(std::string_view tenant_id, std::string_view entry_id,
                      std::string_view pointer) {
  std::string aad{"troupe-audit-field-v1\n"};
  aad.append(tenant_id).append("\n").append(entry_id).append("\n").append(pointer);
  return aad;
}

std::string chain_hash(const std::string& prev_hash, std::string_view canonical) {
  std::string input;
  input.reserve(prev_hash.size() + canonical.size());
  input.append(prev_hash).append(canonical);
  return crypto::sha256(input);
}

sealed_entry seal_entry(const entry_input& in, std::uint64_t seq, const std::string& prev_hash,
                        const std::function<data_key(const std::string& subject)>& key_for) {
  sealer s{in, key_for, {}, json::array()};
  json entry = json::object();
  entry["v"] = 1;
  entry["tenant_id"] = in.tenant_id;
  entry["seq"] = seq;
  entry["id"] = in.id;
  entry["at"] = in.at;
  entry["actor"] = {{"type", in.origin.actor_type}, {"id", null_or(in.origin.actor_id)}};
  entry["action"] = in.change.action;
  entry["resource"]
    = {{"type", null_or(in.change.resource_type)}, {"id", null_or(in.change.resource_id)}};
  entry["outcome"] = in.change.outcome;
  entry["request_id"] = null_or(in.origin.request_id);
  entry["ip"] = null_or(in.origin.ip);
  entry["user_agent"] = null_or(in.origin.user_agent);
  const auto actor_subject = origin_subject(in.origin);
  for (const char* field : {"ip", "user_agent"}) {
    if (!entry[field].is_null()) {
      s.seal(entry[field], std::string{"/"} + field, actor_subject);
    }
  }
  if (in.change.before.is_null() && in.change.after.is_null()) {
    entry["changes"] = nullptr;
  } else {
    json changes{{"before", redact(in.change.before)}, {"after", redact(in.change.after)}};
    const auto subject = change_subject(in.origin, in.change);
    s.walk(changes["before"], "/changes/before", subject);
    s.walk(changes["after"], "/changes/after", subject);
    entry["changes"] = std::move(changes);
  }
  entry["encrypted"] = std::move(s.encrypted);
  sealed_entry out;
  out.seq = seq;
  out.canonical = entry.dump(-1, ' ', false, json::error_handler_t::replace);
  out.prev_hash = prev_hash;
  out.hash = chain_hash(prev_hash, out.canonical);
  return out;
}

std::vector<std::string> key_ids(const json& canonical) {
  std::vector<std::string> ids;
  const auto it = canonical.find("encrypted");
  if (it == canonical.end() || !it->is_array()) {
    return ids;
  }
  for (const auto& pointer : *it) {
    if (!pointer.is_string()) {
      continue;
    }
    const json::json_pointer ptr{pointer.get<std::string>()};
    if (!canonical.contains(ptr) || !canonical.at(ptr).is_string()) {
      continue;
    }
    const auto& sealed = canonical.at(ptr).get_ref<const std::string&>();
    const auto dot = sealed.find('.');
    if (dot != std::string::npos) {
      auto id = sealed.substr(0, dot);
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ids.push_back(std::move(id));
      }
    }
  }
  return ids;
}

json render(const json& canonical, const std::string& prev_hash, const std::string& hash,
            const key_lookup& lookup) {
  json entry = canonical;
  const auto tenant_id = entry.value("tenant_id", std::string{});
  const auto entry_id = entry.value("id", std::string{});
  if (const auto it = entry.find("encrypted"); it != entry.end() && it->is_array()) {
    for (const auto& pointer : *it) {
      if (!pointer.is_string()) {
        continue;
      }
      const auto& text = pointer.get_ref<const std::string&>();
      json::json_pointer ptr;
      try {
        ptr = json::json_pointer{text};
      } catch (const json::exception&) {
        continue;
      }
      if (!entry.contains(ptr) || !entry.at(ptr).is_string()) {
        continue;
      }
      auto& field = entry.at(ptr);
      const auto sealed = field.get<std::string>();
      const auto dot = sealed.find('.');
      json opened = "[unavailable]";
      if (dot != std::string::npos) {
        const auto key = lookup(sealed.substr(0, dot));
        if (!key) {
          opened = "[unavailable]";
        } else if (!*key) {
          opened = "[erased]";
        } else if (auto bytes = crypto::unbase64url(sealed.substr(dot + 1))) {
          if (auto plain = crypto::open(**key, *bytes, field_aad(tenant_id, entry_id, text))) {
            opened = json::parse(*plain, nullptr, false);
            if (opened.is_discarded()) {
              opened = "[unavailable]";
            }
          }
        }
      }
      field = std::move(opened);
    }
  }
  entry.erase("encrypted");
  entry.erase("tenant_id");
  entry.erase("v");
  entry["prev_hash"] = crypto::hex(prev_hash);
  entry["hash"] = crypto::hex(hash);
  return entry;
}

std::string wrap_key(const std::string& key, const std::string& tenant_id,
                     const std::string& subject, const std::string& data_key) {
  return crypto::seal(key, data_key, "troupe-audit-data-key-v1\n" + tenant_id + "\n" + subject);
}

std::optional<std::string> unwrap_key(const std::string& key, const std::string& tenant_id,
                                      const std::string& subject, const std::string& wrapped) {
  return crypto::open(key, wrapped, "troupe-audit-data-key-v1\n" + tenant_id + "\n" + subject);
}

} // namespace troupe::storage::audit_format
