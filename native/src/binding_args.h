// Argument checks for the N-API binding. The TypeScript layer validates everything first;
// these checks exist so that a wrong call straight into the binding throws a JS error
// instead of reading or writing out of bounds. Nothing trusts JavaScript.
#pragma once
// A worker thread may be terminated while async calls are in flight; settling their promises
// then fails, and node-addon-api's default reaction is to abort the whole process. With this,
// errors that can no longer reach JavaScript (the environment is going away) are dropped.
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace bn {

// Throws a TypeError or RangeError carrying `code` (ERR_BATCHNORM_...), as lib/errors.ts does.
[[noreturn]] inline void throw_error(Napi::Env env, bool type_error, const char* code,
                                     const std::string& message) {
  Napi::Error e = type_error ? Napi::Error(Napi::TypeError::New(env, message))
                             : Napi::Error(Napi::RangeError::New(env, message));
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

class ArgReader {
 public:
  explicit ArgReader(const Napi::CallbackInfo& info) : info_(info), env_(info.Env()) {
    spans_.reserve(info.Length());  // one allocation per call, not one per array
    keep_.reserve(info.Length());
  }

  // How an array argument may share memory with the others (check_overlaps).
  enum class Access {
    kRead,     // with other read arrays
    kWritten,  // only as an allowed in-place pair
    kAlone,    // read, but only as an allowed in-place pair (a residual with x, a ReLU mask)
  };

  // A Float32Array argument of exactly `length` elements. `optional` accepts null/undefined
  // (returns nullptr). Every array is remembered for the overlap check.
  float* f32(size_t i, const char* name, int64_t length, bool optional, bool written) {
    return f32(i, name, length, optional, written ? Access::kWritten : Access::kRead);
  }
  float* f32(size_t i, const char* name, int64_t length, bool optional, Access access) {
    return typed<float>(i, name, length, optional, access, napi_float32_array, "Float32Array");
  }

  // The same for a Float64Array (per-channel statistics in double, SPEC section 8).
  double* f64(size_t i, const char* name, int64_t length, bool optional, bool written) {
    return typed<double>(i, name, length, optional, written ? Access::kWritten : Access::kRead,
                         napi_float64_array, "Float64Array");
  }

  // The same for a Uint8Array of `length` bytes (the ReLU mask, SPEC section 7).
  uint8_t* u8(size_t i, const char* name, int64_t length, bool optional, Access access) {
    return typed<uint8_t>(i, name, length, optional, access, napi_uint8_array, "Uint8Array");
  }

  // The same for an Int32Array (a worker group's shared counters, SPEC section 8).
  int32_t* i32(const Napi::Value& v, const char* name, int64_t length) {
    return typed<int32_t>(v, name, length, false, Access::kWritten, napi_int32_array, "Int32Array");
  }
  double* f64(const Napi::Value& v, const char* name, int64_t length) {
    return typed<double>(v, name, length, false, Access::kWritten, napi_float64_array, "Float64Array");
  }

  // A non-negative integer no larger than 2^53 (a safe integer count).
  int64_t count(size_t i, const char* name) {
    const double d = number(i, name);
    if (!(d >= 0.0 && d <= 9007199254740992.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw_error(env_, false, "ERR_BATCHNORM_INVALID_SHAPE",
                  std::string("Expected a non-negative integer for ") + name);
    return static_cast<int64_t>(d);
  }

  double number(size_t i, const char* name) { return number(info_[i], name); }
  double number(const Napi::Value& v, const char* name) {
    if (!v.IsNumber())
      throw_error(env_, true, "ERR_BATCHNORM_INVALID_TYPE",
                  std::string("Expected a number for ") + name);
    return v.As<Napi::Number>().DoubleValue();
  }

  // A boolean, or `fallback` when the argument is absent (undefined).
  bool boolean(size_t i, const char* name, bool fallback) {
    return info_[i].IsUndefined() ? fallback : boolean(i, name);
  }

  bool boolean(size_t i, const char* name) {
    if (!info_[i].IsBoolean())
      throw_error(env_, true, "ERR_BATCHNORM_INVALID_TYPE",
                  std::string("Expected a boolean for ") + name);
    return info_[i].As<Napi::Boolean>().Value();
  }

  // Any written (or kAlone) array that shares memory with another argument must be that very
  // range and one of the permitted in-place pairs (`in_place`: pairs of names, either order;
  // none when left empty).
  void check_overlaps(std::initializer_list<std::pair<const char*, const char*>> in_place = {}) const {
    for (size_t i = 0; i < spans_.size(); ++i)
      for (size_t j = i + 1; j < spans_.size(); ++j) {
        const Span &a = spans_[i], &b = spans_[j];
        if ((a.access == Access::kRead && b.access == Access::kRead) || a.bytes == 0 || b.bytes == 0) continue;
        if (a.begin >= b.begin + b.bytes || b.begin >= a.begin + a.bytes) continue;
        const bool same = a.begin == b.begin && a.bytes == b.bytes;
        bool allowed = false;
        for (const auto& [out, in] : in_place)
          allowed = allowed || (a.name == std::string(in) && b.name == std::string(out)) ||
                    (a.name == std::string(out) && b.name == std::string(in));
        if (!(same && allowed))
          throw_error(env_, false, "ERR_BATCHNORM_OVERLAP",
                      std::string("Expected ") + a.name + " and " + b.name +
                          " not to overlap in memory");
      }
  }

  // The typed arrays read so far, to keep alive while asynchronous work uses their memory.
  const std::vector<Napi::TypedArray>& arrays() const { return keep_; }

 private:
  template <class T>
  T* typed(size_t i, const char* name, int64_t length, bool optional, Access access,
           napi_typedarray_type type, const char* type_name) {
    return typed<T>(info_[i], name, length, optional, access, type, type_name);
  }
  template <class T>
  T* typed(const Napi::Value& v, const char* name, int64_t length, bool optional, Access access,
           napi_typedarray_type type, const char* type_name) {
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      throw_error(env_, true, "ERR_BATCHNORM_INVALID_TYPE",
                  std::string("Expected a ") + type_name + " for " + name);
    Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
    if (static_cast<int64_t>(a.ElementLength()) != length)
      throw_error(env_, false, "ERR_BATCHNORM_LENGTH_MISMATCH",
                  std::string("Expected ") + name + " of length " + std::to_string(length) +
                      " but received length " + std::to_string(a.ElementLength()));
    keep_.push_back(a);
    spans_.push_back({reinterpret_cast<uintptr_t>(a.Data()),
                      static_cast<uintptr_t>(a.ByteLength()), access, name});
    return a.Data();
  }

  struct Span {
    uintptr_t begin, bytes;
    Access access;
    const char* name;
  };
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  std::vector<Span> spans_;
  std::vector<Napi::TypedArray> keep_;
};

}  // namespace bn
