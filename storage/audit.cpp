#include "storage/audit.hpp"

#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace troupe::storage {

namespace {

namespace crypto = protocol::crypto;
using json = nlohmann::json;

#define TROUPE_AT_TEXT(column)                                                                     \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

constexpr pg_statement head_sql{
  "audit_head",
  "SELECT seq, encode(hash, 'hex') FROM ("
  " (SELECT seq, hash FROM audit_log WHERE tenant_id = troupe_current_tenant()"
  "  ORDER BY seq DESC LIMIT 1)"
  " UNION ALL"
  " (SELECT seq, hash FROM audit_checkpoints WHERE tenant_id = troupe_current_tenant()"
  "  ORDER BY seq DESC LIMIT 1)) h ORDER BY seq DESC LIMIT 1",
};

// Gets the subjects' data keys, creating the missing ones from the candidates sent along
// (one round trip; a concurrent creator of the same subject wins and its key is used).
constexpr pg_statement keys_sql{
  "audit_keys",
  "WITH wanted AS (SELECT * FROM json_to_recordset($1::json) AS w(subject text, id uuid,"
  " wrapped text)),"
  " ins AS (INSERT INTO audit_data_keys (tenant_id, id, subject, wrapped_key)"
  "  SELECT troupe_current_tenant(), w.id, w.subject, decode(w.wrapped, 'hex') FROM wanted w"
  "  ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING subject, id, wrapped_key)"
  " SELECT subject, id::text, encode(wrapped_key, 'hex') FROM ins"
  " UNION ALL"
  " SELECT k.subject, k.id::text, encode(k.wrapped_key, 'hex') FROM audit_data_keys k"
  " WHERE k.tenant_id = troupe_current_tenant() AND k.subject IN (SELECT subject FROM wanted)"
  " AND k.subject NOT IN (SELECT subject FROM ins)",
};

constexpr pg_statement insert_sql{
  "audit_insert",
  "INSERT INTO audit_log (tenant_id, seq, id, at, actor_type, actor_id, action, resource_type,"
  " resource_id, outcome, request_id, entry, prev_hash, hash)"
  " SELECT troupe_current_tenant(), e.seq, e.id, e.at, e.actor_type, e.actor_id, e.action,"
  " e.resource_type, e.resource_id, e.outcome, e.request_id, e.entry,"
  " decode(e.prev_hash, 'hex'), decode(e.hash, 'hex')"
  " FROM json_to_recordset($1::json) AS e(seq bigint, id uuid, at timestamptz, actor_type text,"
  " actor_id text, action text, resource_type text, resource_id text, outcome text,"
  " request_id text, entry text, prev_hash text, hash text)",
};

// A single entry (the common case without contention): plain parameters, no JSON to parse.
constexpr pg_statement insert_one_sql{
  "audit_insert_one",
  "INSERT INTO audit_log (tenant_id, seq, id, at, actor_type, actor_id, action, resource_type,"
  " resource_id, outcome, request_id, entry, prev_hash, hash) VALUES (troupe_current_tenant(),"
  " $1::bigint, $2::uuid, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, decode($12, 'hex'),"
  " decode($13, 'hex'))",
};

constexpr pg_statement chain_sql{
  "audit_chain_start",
  "INSERT INTO audit_chains (id) VALUES (troupe_current_tenant()) ON CONFLICT DO NOTHING",
};

constexpr pg_statement destroy_sql{
  "audit_destroy_key",
  "UPDATE audit_data_keys SET wrapped_key = NULL, destroyed_at = now()"
  " WHERE tenant_id = troupe_current_tenant() AND subject = $1 AND wrapped_key IS NOT NULL",
};

constexpr pg_statement keys_by_id_sql{
  "audit_keys_by_id",
  "SELECT id::text, subject, encode(wrapped_key, 'hex') FROM audit_data_keys"
  " WHERE tenant_id = troupe_current_tenant() AND id = ANY($1::uuid[])",
};

// The list statement for one combination of filters: only the filters in use appear, so
// every combination gets a plan that uses its index (a catch-all `$1 IS NULL OR …` statement
// gets a generic plan that scans the whole table). Built once per combination, kept forever.
enum list_filter : unsigned {
  f_actor = 1,
  f_action = 2,
  f_action_prefix = 4,
  f_resource_type = 8,
  f_resource_id = 16,
  f_outcome = 32,
  f_from = 64,
  f_to = 128,
  f_cursor = 256,
  f_oldest_first = 512,
};

const pg_statement& list_statement(unsigned mask) {
  struct built {
    std::string name;
    std::string sql;
    pg_statement statement{nullptr, nullptr};
  };
  static std::mutex mutex;
  static std::map<unsigned, std::unique_ptr<built>> cache;
  std::lock_guard<std::mutex> guard{mutex};
  auto& slot = cache[mask];
  if (!slot) {
    slot = std::make_unique<built>();
    slot->name = "audit_list_" + std::to_string(mask);
    std::string sql = "SELECT seq, entry, encode(prev_hash, 'hex'), encode(hash, 'hex') FROM "
                      "audit_log WHERE tenant_id = troupe_current_tenant()";
    int n = 0;
    auto param = [&n] {
      return "$" + std::to_string(++n);
    };
    const bool oldest = (mask & f_oldest_first) != 0;
    const std::pair<unsigned, const char*> conditions[]
      = {{f_actor, " AND actor_id = "},
         {f_action, " AND action = "},
         {f_action_prefix, " AND action LIKE "},
         {f_resource_type, " AND resource_type = "},
         {f_resource_id, " AND resource_id = "},
         {f_outcome, " AND outcome = "},
         {f_from, " AND at >= "},
         {f_to, " AND at < "},
         {f_cursor, oldest ? " AND seq > " : " AND seq < "}};
    for (const auto& [bit, text] : conditions) {
      if ((mask & bit) != 0) {
        sql += text;
        sql += param();
        if (bit == f_from || bit == f_to) {
          sql += "::timestamptz";
        } else if (bit == f_cursor) {
          sql += "::bigint";
        }
      }
    }
    sql += oldest ? " ORDER BY seq LIMIT " : " ORDER BY seq DESC LIMIT ";
    sql += param() + "::int";
    slot->sql = std::move(sql);
    slot->statement = pg_statement{slot->name.c_str(), slot->sql.c_str()};
  }
  return slot->statement;
}

constexpr pg_statement checkpoint_sql{
  "audit_checkpoint",
  "SELECT seq, encode(hash, 'hex'), encode(signature, 'hex') FROM audit_checkpoints"
  " WHERE tenant_id = troupe_current_tenant() ORDER BY seq DESC LIMIT 1",
};

constexpr pg_statement verify_rows_sql{
  "audit_verify_rows",
  "SELECT seq, entry, encode(prev_hash, 'hex'), encode(hash, 'hex'), id::text, " //
  TROUPE_AT_TEXT("at") ", actor_type, actor_id, action, resource_type, resource_id, outcome,"
                       " request_id FROM audit_log WHERE tenant_id = troupe_current_tenant()"
                       " AND seq > $1::bigint ORDER BY seq LIMIT $2::int",
};

constexpr int verify_batch = 2000;

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto ms
    = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%.*s.%03dZ", static_cast<int>(n), buf,
                static_cast<int>(ms % 1000));
  return out;
}

std::uint64_t to_u64(std::string_view text) {
  std::uint64_t n = 0;
  for (const char c : text) {
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

std::optional<std::string> nonempty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    out += ids[i];
  }
  out.push_back('}');
  return out;
}

protocol::audit_verification bad(std::uint64_t seq, std::string reason) {
  protocol::audit_verification v;
  v.ok = false;
  v.first_bad_seq = seq;
  v.reason = std::move(reason);
  return v;
}

// True if the stored columns say what the hashed text says.
bool columns_match(const json& e, const pg_rows& rows, int r, const std::string& tenant_id) {
  auto text = [&](const json& v) {
    return v.is_string() ? v.get<std::string>() : std::string{};
  };
  auto col = [&](int c) {
    return std::string{rows.get(r, c)};
  };
  if (!e.is_object() || !e.contains("actor") || !e.contains("resource")) {
    return false;
  }
  return e.value("tenant_id", std::string{}) == tenant_id
         && e.value("seq", std::uint64_t{0}) == to_u64(rows.get(r, 0)) && text(e["id"]) == col(4)
         && text(e["at"]) == col(5) && text(e["actor"]["type"]) == col(6)
         && text(e["actor"]["id"]) == col(7) && text(e["action"]) == col(8)
         && text(e["resource"]["type"]) == col(9) && text(e["resource"]["id"]) == col(10)
         && text(e["outcome"]) == col(11) && text(e["request_id"]) == col(12);
}

} // namespace

#undef TROUPE_AT_TEXT

std::shared_ptr<const audit_secrets> audit_secrets::derive(const std::string& kek) {
  auto s = std::make_shared<audit_secrets>();
  s->wrap_key = crypto::hkdf_sha256(kek, "troupe", "audit data key wrapping v1", 32);
  s->checkpoint_key = crypto::hkdf_sha256(kek, "troupe", "audit checkpoint signing v1", 32);
  return s;
}

caf::expected<bool> key_matches_database(pg_connection& owner,
                                         const std::string& key_encryption_key) {
  constexpr pg_statement record_sql{
    "platform_key_record",
    "INSERT INTO platform_keys (name, check_value) VALUES ('key-encryption-key',"
    " decode($1, 'hex')) ON CONFLICT (name) DO NOTHING"};
  constexpr pg_statement read_sql{
    "platform_key_read",
    "SELECT encode(check_value, 'hex') FROM platform_keys WHERE name = 'key-encryption-key'"};
  const auto check = crypto::hkdf_sha256(key_encryption_key, "troupe", "key check v1", 32);
  if (auto recorded = owner.execute(record_sql, {crypto::hex(check)}); !recorded) {
    return std::move(recorded.error());
  }
  auto rows = owner.execute(read_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() != 1) {
    return caf::make_error(protocol::errc::internal, "platform_keys has no key-encryption-key");
  }
  return crypto::constant_time_equal(crypto::unhex(rows->get(0, 0)).value_or(std::string{}), check);
}

std::string checkpoint_message(const std::string& tenant_id, std::uint64_t seq,
                               const std::string& hash) {
  return "troupe-audit-checkpoint-v1\n" + tenant_id + "\n" + std::to_string(seq) + "\n"
         + crypto::hex(hash);
}

audit_repository::audit_repository(pg_transaction& tx, const audit_secrets& secrets)
    : tx_(tx), secrets_(secrets) {}

caf::expected<audit_head> audit_repository::head() {
  auto rows = tx_.execute(head_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  audit_head h;
  if (rows->size() == 1) {
    h.seq = to_u64(rows->get(0, 0));
    h.hash = crypto::unhex(rows->get(0, 1)).value_or(std::string{});
  }
  return h;
}

caf::expected<audit_head> audit_repository::append(const audit_head& head,
                                                   const std::vector<audit_draft>& drafts,
                                                   const audit_key_cache* known,
                                                   audit_key_cache* fetched, bool finish) {
  if (drafts.empty()) {
    return head;
  }
  const auto& tenant_id = *tx_.tenant();
  // 1. The data keys of every subject in the batch (those not known yet, in one statement).
  audit_key_cache local;
  audit_key_cache& keys = fetched != nullptr ? *fetched : local;
  std::set<std::string> subjects;
  for (const auto& d : drafts) {
    if (!d.origin.ip.empty() || !d.origin.user_agent.empty()) {
      subjects.insert(audit_format::origin_subject(d.origin));
    }
    if (!d.change.before.is_null() || !d.change.after.is_null()) {
      subjects.insert(audit_format::change_subject(d.origin, d.change));
    }
  }
  for (auto i = subjects.begin(); i != subjects.end();) {
    const bool have = keys.count(*i) != 0 || (known != nullptr && known->count(*i) != 0);
    i = have ? subjects.erase(i) : std::next(i);
  }
  if (!subjects.empty()) {
    json wanted = json::array();
    for (const auto& subject : subjects) {
      wanted.push_back(
        {{"subject", subject},
         {"id", protocol::new_uuid_v7()},
         {"wrapped", crypto::hex(audit_format::wrap_key(secrets_.wrap_key, tenant_id, subject,
                                                        crypto::random_bytes(32)))}});
    }
    auto rows = tx_.execute(keys_sql, {wanted.dump()});
    if (!rows) {
      return std::move(rows.error());
    }
    for (int r = 0; r < rows->size(); ++r) {
      const std::string subject{rows->get(r, 0)};
      audit_format::data_key k;
      k.id = std::string{rows->get(r, 1)};
      if (!rows->is_null(r, 2)) {
        auto wrapped = crypto::unhex(rows->get(r, 2));
        auto key = wrapped
                     ? audit_format::unwrap_key(secrets_.wrap_key, tenant_id, subject, *wrapped)
                     : std::nullopt;
        if (!key) {
          return caf::make_error(protocol::errc::internal,
                                 "an audit data key cannot be unwrapped: is "
                                 "auth.key-encryption-key the one this database was set up with?");
        }
        k.key = std::move(*key);
      }
      keys[subject] = std::move(k);
    }
  }
  auto key_for = [&keys, known](const std::string& subject) {
    if (auto it = keys.find(subject); it != keys.end()) {
      return it->second;
    }
    if (known != nullptr) {
      if (auto it = known->find(subject); it != known->end()) {
        return it->second;
      }
    }
    return audit_format::data_key{};
  };
  // 2. The entries, chained in order, in one INSERT.
  audit_head h = head;
  std::vector<pg_params> entries;
  entries.reserve(drafts.size());
  for (const auto& d : drafts) {
    audit_format::entry_input in{tenant_id, protocol::new_uuid_v7(), now_rfc3339(), d.origin,
                                 d.change};
    auto sealed = audit_format::seal_entry(in, h.seq + 1, h.hash, key_for);
    entries.push_back({std::to_string(sealed.seq), in.id, in.at, d.origin.actor_type,
                       nonempty(d.origin.actor_id), d.change.action,
                       nonempty(d.change.resource_type), nonempty(d.change.resource_id),
                       d.change.outcome, nonempty(d.origin.request_id), std::move(sealed.canonical),
                       crypto::hex(sealed.prev_hash), crypto::hex(sealed.hash)});
    h.seq = sealed.seq;
    h.hash = sealed.hash;
  }
  pg_params params;
  const pg_statement* statement = &insert_one_sql;
  if (entries.size() == 1) {
    params = std::move(entries.front());
  } else {
    // Several: one statement, the rows as a JSON array of objects (json_to_recordset).
    static constexpr const char* names[] = {
      "seq",         "id",      "at",         "actor_type", "actor_id",  "action", "resource_type",
      "resource_id", "outcome", "request_id", "entry",      "prev_hash", "hash"};
    json rows = json::array();
    for (auto& e : entries) {
      json row = json::object();
      for (std::size_t i = 0; i < e.size(); ++i) {
        row[names[i]] = e[i] ? json(std::move(*e[i])) : json(nullptr);
      }
      rows.push_back(std::move(row));
    }
    params = {rows.dump(-1, ' ', false, json::error_handler_t::replace)};
    statement = &insert_sql;
  }
  if (head.seq == 0) {
    if (auto started = tx_.execute(chain_sql); !started) {
      return std::move(started.error());
    }
  }
  auto inserted
    = finish ? tx_.execute_and_commit(*statement, params) : tx_.execute(*statement, params);
  if (!inserted) {
    return std::move(inserted.error());
  }
  return h;
}

caf::expected<bool> audit_repository::destroy_key(const std::string& subject) {
  auto rows = tx_.execute(destroy_sql, {subject});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->affected() > 0;
}

caf::expected<protocol::audit_page> audit_repository::list(const protocol::audit_query& q) {
  std::optional<std::string> action_exact;
  std::optional<std::string> action_prefix;
  if (q.action.size() > 2 && q.action.compare(q.action.size() - 2, 2, ".*") == 0) {
    std::string like;
    for (const char c : q.action.substr(0, q.action.size() - 1)) {
      if (c == '%' || c == '_' || c == '\\') {
        like.push_back('\\');
      }
      like.push_back(c);
    }
    action_prefix = like + "%";
  } else {
    action_exact = nonempty(q.action);
  }
  unsigned mask = q.oldest_first ? f_oldest_first : 0u;
  pg_params params;
  auto add = [&](unsigned bit, const std::optional<std::string>& value) {
    if (value) {
      mask |= bit;
      params.push_back(value);
    }
  };
  add(f_actor, nonempty(q.actor_id));
  add(f_action, action_exact);
  add(f_action_prefix, action_prefix);
  add(f_resource_type, nonempty(q.resource_type));
  add(f_resource_id, nonempty(q.resource_id));
  add(f_outcome, nonempty(q.outcome));
  add(f_from, nonempty(q.from));
  add(f_to, nonempty(q.to));
  add(f_cursor,
      q.cursor == 0 ? std::nullopt : std::optional<std::string>{std::to_string(q.cursor)});
  params.emplace_back(std::to_string(q.limit + 1));
  auto rows = tx_.execute(list_statement(mask), params);
  if (!rows) {
    return std::move(rows.error());
  }
  const int n = std::min(rows->size(), static_cast<int>(q.limit));
  std::vector<json> entries;
  entries.reserve(static_cast<std::size_t>(n));
  std::vector<std::string> ids;
  for (int r = 0; r < n; ++r) {
    auto e = json::parse(rows->get(r, 1), nullptr, false);
    if (e.is_discarded()) {
      e = json::object({{"seq", to_u64(rows->get(r, 0))}, {"unreadable", true}});
    }
    for (auto& id : audit_format::key_ids(e)) {
      if (protocol::is_uuid(id) && std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ids.push_back(std::move(id));
      }
    }
    entries.push_back(std::move(e));
  }
  // The data keys of this page, unwrapped once.
  std::map<std::string, std::optional<std::string>> keys;
  if (!ids.empty()) {
    auto key_rows = tx_.execute(keys_by_id_sql, {uuid_array(ids)});
    if (!key_rows) {
      return std::move(key_rows.error());
    }
    for (int r = 0; r < key_rows->size(); ++r) {
      std::optional<std::string> key;
      if (!key_rows->is_null(r, 2)) {
        auto wrapped = crypto::unhex(key_rows->get(r, 2));
        key = wrapped ? audit_format::unwrap_key(secrets_.wrap_key, *tx_.tenant(),
                                                 std::string{key_rows->get(r, 1)}, *wrapped)
                      : std::nullopt;
        if (!key) {
          continue; // cannot be opened: "[unavailable]"
        }
      }
      keys.emplace(std::string{key_rows->get(r, 0)}, std::move(key));
    }
  }
  const audit_format::key_lookup lookup
    = [&keys](const std::string& id) -> std::optional<std::optional<std::string>> {
    auto it = keys.find(id);
    if (it == keys.end()) {
      return std::nullopt;
    }
    return it->second;
  };
  protocol::audit_page page;
  page.data.reserve(entries.size());
  for (int r = 0; r < n; ++r) {
    const auto prev = crypto::unhex(rows->get(r, 2)).value_or(std::string{});
    const auto hash = crypto::unhex(rows->get(r, 3)).value_or(std::string{});
    page.data.push_back(
      audit_format::render(entries[static_cast<std::size_t>(r)], prev, hash, lookup)
        .dump(-1, ' ', false, json::error_handler_t::replace));
  }
  if (rows->size() > static_cast<int>(q.limit) && n > 0) {
    page.next_cursor = to_u64(rows->get(n - 1, 0));
  }
  return page;
}

caf::expected<protocol::audit_verification> audit_repository::verify(const audit_head& known) {
  const auto& tenant_id = *tx_.tenant();
  auto cp = tx_.execute(checkpoint_sql);
  if (!cp) {
    return std::move(cp.error());
  }
  std::uint64_t expected_seq = 1;
  std::string expected_prev = audit_format::genesis_hash();
  if (cp->size() == 1) {
    const auto seq = to_u64(cp->get(0, 0));
    const auto hash = crypto::unhex(cp->get(0, 1)).value_or(std::string{});
    const auto signature = crypto::unhex(cp->get(0, 2)).value_or(std::string{});
    const auto expected
      = crypto::hmac_sha256(secrets_.checkpoint_key, checkpoint_message(tenant_id, seq, hash));
    if (!crypto::constant_time_equal(signature, expected)) {
      return bad(seq, "the retention checkpoint's signature is not valid");
    }
    expected_seq = seq + 1;
    expected_prev = hash;
  }
  protocol::audit_verification result;
  std::uint64_t last = expected_seq - 1;
  // The head the tenant actor appended last must be in the chain (a pruned one cannot be
  // checked, but it was when the checkpoint was made).
  bool known_seen = known.seq < last;
  if (known.seq == last) {
    known_seen = known.seq == 0 || crypto::constant_time_equal(known.hash, expected_prev);
    if (!known_seen) {
      return bad(last, "the checkpoint differs from the chain head this server appended");
    }
  }
  for (;;) {
    auto rows = tx_.execute(verify_rows_sql, {std::to_string(last), std::to_string(verify_batch)});
    if (!rows) {
      return std::move(rows.error());
    }
    for (int r = 0; r < rows->size(); ++r) {
      const auto seq = to_u64(rows->get(r, 0));
      if (seq != expected_seq) {
        return bad(expected_seq, "an entry is missing");
      }
      const auto entry = rows->get(r, 1);
      const auto prev = crypto::unhex(rows->get(r, 2)).value_or(std::string{});
      const auto hash = crypto::unhex(rows->get(r, 3)).value_or(std::string{});
      if (prev != expected_prev) {
        return bad(seq, "prev_hash does not link to the previous entry");
      }
      const auto computed = audit_format::chain_hash(expected_prev, entry);
      if (computed != hash) {
        return bad(seq, "the entry does not match its hash");
      }
      const auto parsed = json::parse(entry, nullptr, false);
      if (parsed.is_discarded() || !columns_match(parsed, *rows, r, tenant_id)) {
        return bad(seq, "the stored columns differ from the hashed entry");
      }
      if (seq == known.seq) {
        known_seen = crypto::constant_time_equal(hash, known.hash);
        if (!known_seen) {
          return bad(seq, "the entry differs from the chain head this server appended");
        }
      }
      expected_prev = hash;
      last = seq;
      ++expected_seq;
      ++result.entries;
    }
    if (rows->size() < verify_batch) {
      break;
    }
  }
  if (!known_seen && known.seq > last) {
    return bad(last + 1, "entries are missing at the end of the chain");
  }
  if (last > 0) {
    result.head_hash = crypto::hex(expected_prev);
  }
  return result;
}

caf::expected<prune_report> prune_audit(pg_connection& conn, const audit_secrets& secrets,
                                        const std::string& cutoff, const std::string& only_tenant) {
  constexpr pg_statement chains_sql{
    "audit_prune_chains",
    "SELECT id::text FROM audit_chains WHERE $1 = '' OR id = nullif($1, '')::uuid ORDER BY id"};
  // The longest prefix of the chain older than the cutoff: it stops before the first entry
  // at or after it, so a clock that went backwards never removes a recent entry.
  constexpr pg_statement target_sql{
    "audit_prune_target",
    "SELECT s.seq, encode(l.hash, 'hex') FROM (SELECT coalesce("
    " (SELECT min(seq) - 1 FROM audit_log WHERE tenant_id = troupe_current_tenant()"
    "  AND at >= $1::timestamptz),"
    " (SELECT max(seq) FROM audit_log WHERE tenant_id = troupe_current_tenant())) AS seq) s"
    " JOIN audit_log l ON l.tenant_id = troupe_current_tenant() AND l.seq = s.seq",
  };
  constexpr pg_statement checkpoint_insert_sql{
    "audit_prune_checkpoint",
    "INSERT INTO audit_checkpoints (tenant_id, seq, hash, signature)"
    " VALUES (troupe_current_tenant(), $1::bigint, decode($2, 'hex'), decode($3, 'hex'))",
  };
  constexpr pg_statement delete_sql{
    "audit_prune_delete",
    "DELETE FROM audit_log WHERE tenant_id = troupe_current_tenant() AND seq <= $1::bigint",
  };
  auto chains = conn.execute(chains_sql, {only_tenant});
  if (!chains) {
    return std::move(chains.error());
  }
  prune_report report;
  for (int c = 0; c < chains->size(); ++c) {
    const std::string tenant_id{chains->get(c, 0)};
    pg_transaction tx{conn, tenant_id};
    auto outcome = [&]() -> caf::expected<std::uint64_t> {
      auto target = tx.execute(target_sql, {cutoff});
      if (!target) {
        return std::move(target.error());
      }
      if (target->size() != 1) {
        return std::uint64_t{0};
      }
      const auto seq = to_u64(target->get(0, 0));
      const auto hash = crypto::unhex(target->get(0, 1)).value_or(std::string{});
      // Only an intact chain is pruned: a checkpoint must never bless a tampered entry.
      audit_repository repo{tx, secrets};
      auto check = repo.verify(audit_head{});
      if (!check) {
        return std::move(check.error());
      }
      if (!check->ok) {
        return caf::make_error(protocol::errc::conflict, "the chain does not verify at seq "
                                                           + std::to_string(check->first_bad_seq)
                                                           + ": " + check->reason);
      }
      const auto signature
        = crypto::hmac_sha256(secrets.checkpoint_key, checkpoint_message(tenant_id, seq, hash));
      if (auto inserted = tx.execute(checkpoint_insert_sql, {std::to_string(seq), crypto::hex(hash),
                                                             crypto::hex(signature)});
          !inserted) {
        return std::move(inserted.error());
      }
      auto deleted = tx.execute(delete_sql, {std::to_string(seq)});
      if (!deleted) {
        return std::move(deleted.error());
      }
      return static_cast<std::uint64_t>(deleted->affected());
    }();
    if (!outcome) {
      if (tx.begun()) {
        (void)conn.exec("ROLLBACK");
      }
      if (!report.first_error) {
        report.first_error = std::move(outcome.error());
      }
      ++report.failed;
      continue;
    }
    if (tx.begun()) {
      if (auto committed = conn.exec("COMMIT"); !committed) {
        return std::move(committed.error());
      }
    }
    if (*outcome > 0) {
      report.removed += *outcome;
      ++report.chains;
    }
  }
  return report;
}

} // namespace troupe::storage
