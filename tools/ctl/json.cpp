#include "json.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace kneeload::ctl {
namespace {

namespace pb = google::protobuf;
using Field = pb::FieldDescriptor;

template <typename T>
void append_number(T v, std::string& out) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      out += "null";
      return;
    }
  }
  char buf[32];
  // Shortest text that reads back as the same value (for float: the same float, not the
  // double it widens to, so 0.1f prints as 0.1).
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

void append_base64(const std::string& bytes, std::string& out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out += '"';
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(n >> (6 * k)) & 63u];
  }
  if (i < bytes.size()) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63u];
    out += kAlphabet[(n >> 12) & 63u];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63u] : '=';
    out += '=';
  }
  out += '"';
}

void append_enum(const pb::EnumDescriptor* type, int number, std::string& out) {
  if (const pb::EnumValueDescriptor* v = type->FindValueByNumber(number)) {
    append_json_string(v->name(), out);
  } else {
    append_number(number, out);  // a value newer than this tool: keep the number
  }
}

// One value of `field`; `index` < 0 for a singular field.
void append_value(const pb::Message& m, const Field* field, int index, std::string& out) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case Field::CPPTYPE_INT32:
      append_number(rep ? r->GetRepeatedInt32(m, field, index) : r->GetInt32(m, field), out);
      return;
    case Field::CPPTYPE_INT64:
      append_number(rep ? r->GetRepeatedInt64(m, field, index) : r->GetInt64(m, field), out);
      return;
    case Field::CPPTYPE_UINT32:
      append_number(rep ? r->GetRepeatedUInt32(m, field, index) : r->GetUInt32(m, field), out);
      return;
    case Field::CPPTYPE_UINT64:
      append_number(rep ? r->GetRepeatedUInt64(m, field, index) : r->GetUInt64(m, field), out);
      return;
    case Field::CPPTYPE_FLOAT:
      append_number(rep ? r->GetRepeatedFloat(m, field, index) : r->GetFloat(m, field), out);
      return;
    case Field::CPPTYPE_DOUBLE:
      append_number(rep ? r->GetRepeatedDouble(m, field, index) : r->GetDouble(m, field), out);
      return;
    case Field::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, field, index) : r->GetBool(m, field)) ? "true" : "false";
      return;
    case Field::CPPTYPE_ENUM:
      append_enum(field->enum_type(), rep ? r->GetRepeatedEnumValue(m, field, index) : r->GetEnumValue(m, field),
                  out);
      return;
    case Field::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, field, index, &scratch) : r->GetStringReference(m, field, &scratch);
      if (field->type() == Field::TYPE_BYTES) {
        append_base64(s, out);  // as protobuf's JSON mapping does
      } else {
        append_json_string(s, out);
      }
      return;
    }
    case Field::CPPTYPE_MESSAGE:
      if (!rep && !r->HasField(m, field)) {
        out += "null";
      } else {
        append_json(rep ? r->GetRepeatedMessage(m, field, index) : r->GetMessage(m, field), out);
      }
      return;
  }
}

}  // namespace

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_json(const pb::Message& message, std::string& out) {
  const pb::Descriptor* d = message.GetDescriptor();
  const pb::Reflection* r = message.GetReflection();
  out += '{';
  for (int i = 0; i < d->field_count(); ++i) {
    const Field* field = d->field(i);
    if (i > 0) out += ", ";
    append_json_string(field->name(), out);
    out += ": ";
    if (field->is_repeated()) {
      out += '[';
      const int n = r->FieldSize(message, field);
      for (int k = 0; k < n; ++k) {
        if (k > 0) out += ", ";
        append_value(message, field, k, out);
      }
      out += ']';
    } else {
      append_value(message, field, -1, out);
    }
  }
  out += '}';
}

}  // namespace kneeload::ctl
