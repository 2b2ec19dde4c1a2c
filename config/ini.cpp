#include "config/ini.hpp"

#include "config/key_table.hpp"
#include "config/value_syntax.hpp"

#include <algorithm>

namespace troupe::config {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_blank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

bool is_comment(std::string_view text) {
  return !text.empty() && (text.front() == '#' || text.front() == ';');
}

// Blank or a comment: what may follow a section header, a quoted string or a list.
bool is_blank_or_comment(std::string_view text) {
  text = trim(text);
  return text.empty() || is_comment(text);
}

bool is_key_name(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_' || c == '.';
  });
}

std::vector<std::string_view> split_lines(std::string_view text) {
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (text.substr(0, bom.size()) == bom) {
    text.remove_prefix(bom.size());
  }
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    lines.push_back(line);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  return lines;
}

// The end of a quoted string starting at text[0] == '"' (one past the closing quote), or npos.
std::size_t quoted_end(std::string_view text) {
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// A bare value ends at a '#' or ';' that follows a blank: `port = 8080 # the default`.
std::string_view strip_trailing_comment(std::string_view text) {
  for (std::size_t i = 1; i < text.size(); ++i) {
    if ((text[i] == '#' || text[i] == ';') && is_blank(text[i - 1])) {
      return trim(text.substr(0, i));
    }
  }
  return trim(text);
}

class ini_parser {
public:
  ini_parser(std::string_view text, const std::string& file_name)
      : lines_(split_lines(text)), file_name_(file_name) {}

  std::variant<std::vector<ini_entry>, config_error> run() {
    std::vector<ini_entry> entries;
    for (index_ = 0; index_ < lines_.size(); ++index_) {
      const auto line = trim(lines_[index_]);
      if (line.empty() || is_comment(line)) {
        continue;
      }
      if (line.front() == '[') {
        if (auto err = read_section(line)) {
          return std::move(*err);
        }
        continue;
      }
      auto entry = read_entry(line);
      if (auto* err = std::get_if<config_error>(&entry)) {
        return std::move(*err);
      }
      entries.push_back(std::get<ini_entry>(std::move(entry)));
    }
    return entries;
  }

private:
  std::string where() const {
    return file_name_ + ":" + std::to_string(index_ + 1);
  }

  config_error malformed(std::string_view line) const {
    return {"--config-file", "troupe: malformed line " + quote(line)
                               + " (expected [group], key=value or a comment) (from " + where()
                               + ")"};
  }

  std::optional<config_error> read_section(std::string_view line) {
    const auto close = line.find(']');
    if (close == std::string_view::npos || !is_blank_or_comment(line.substr(close + 1))) {
      return malformed(line);
    }
    const auto name = trim(line.substr(1, close - 1));
    const auto& groups = key_groups();
    if (std::find(groups.begin(), groups.end(), name) == groups.end()) {
      return config_error{std::string{name}, "troupe: unknown configuration section ["
                                               + std::string{name} + "] (from " + where() + ")"};
    }
    section_ = std::string{name};
    return std::nullopt;
  }

  std::variant<ini_entry, config_error> read_entry(std::string_view line) {
    const auto equals = line.find('=');
    if (equals == std::string_view::npos || !is_key_name(trim(line.substr(0, equals)))) {
      return malformed(line);
    }
    const auto name = std::string{trim(line.substr(0, equals))};
    if (section_.empty()) {
      return config_error{name, "troupe: configuration key " + quote(name)
                                  + " outside any [group] section (from " + where() + ")"};
    }
    auto key = section_ + "." + name;
    if (find_key(key) == nullptr) {
      return config_error{key, "troupe: unknown configuration key " + quote(key) + " (from "
                                 + where() + ")"};
    }
    ini_entry entry{std::move(key), {}, static_cast<int>(index_ + 1)};
    const auto text = trim(line.substr(equals + 1));
    if (!text.empty() && text.front() == '"') {
      const auto end = quoted_end(text);
      // Text after the closing quote stays in the value, so that the value check names it.
      const bool clean = end != std::string_view::npos && is_blank_or_comment(text.substr(end));
      entry.raw = std::string{clean ? text.substr(0, end) : text};
    } else if (!text.empty() && text.front() == '[') {
      auto raw = read_list(text);
      if (!raw) {
        return config_error{entry.key, "troupe: list without a closing ] for " + entry.key
                                         + " (from " + file_name_ + ":" + std::to_string(entry.line)
                                         + ")"};
      }
      entry.raw = std::move(*raw);
    } else {
      entry.raw = std::string{strip_trailing_comment(text)};
    }
    return entry;
  }

  // A list may continue over the following lines, each with its own comments, up to the ']'
  // (as in CAF). Returns the list on one line, or nothing when the file ends first.
  std::optional<std::string> read_list(std::string_view text) {
    std::string raw;
    for (;;) {
      bool in_quotes = false;
      for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = text[i];
        if (in_quotes) {
          if (c == '\\' && i + 1 < text.size()) {
            raw += c;
            c = text[++i];
          } else if (c == '"') {
            in_quotes = false;
          }
          raw += c;
          continue;
        }
        if (c == '#' || c == ';') {
          break; // a comment up to the end of this line
        }
        raw += c;
        if (c == '"') {
          in_quotes = true;
        } else if (c == ']') {
          const auto rest = text.substr(i + 1);
          if (!is_blank_or_comment(rest)) {
            raw += rest; // the value check refuses it and shows it
          }
          return std::string{trim(raw)};
        }
      }
      if (index_ + 1 >= lines_.size()) {
        return std::nullopt;
      }
      ++index_;
      text = trim(lines_[index_]);
      if (!raw.empty() && raw.back() != '[') {
        raw += ' ';
      }
    }
  }

  std::vector<std::string_view> lines_;
  const std::string& file_name_;
  std::size_t index_ = 0;
  std::string section_;
};

} // namespace

std::variant<std::vector<ini_entry>, config_error> parse_ini(std::string_view text,
                                                             const std::string& file_name) {
  return ini_parser{text, file_name}.run();
}

} // namespace troupe::config
