// The N-API binding (node-addon-api, N-API 8, context-aware: each Node environment, such as a
// worker thread, gets its own instance with its own ISA choice and thread count).
//
// Every operation takes its outputs from the caller (the TypeScript layer allocates them), so
// the addon never allocates JS memory. Each op has a sync entry point and an async one that
// runs on the libuv thread pool while holding references to every typed array it touches.
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "batchnorm_ops.h"
#include "binding_args.h"
#include "dispatch.h"
#include "huge_pages.h"
#include "malloc_tuning.h"
#include "stream_probe.h"

namespace bn {
namespace {

using Job = std::function<void()>;
using Access = ArgReader::Access;

// An environment variable as the process had it when the addon loaded, which is when libgomp,
// loaded with it, read its wait policy too (lib/loader.ts sets GOMP_SPINCOUNT unless the user
// chose).
std::string env_at_load(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}
const std::string kWaitPolicyAtLoad = env_at_load("OMP_WAIT_POLICY");
const std::string kSpinCountAtLoad = env_at_load("GOMP_SPINCOUNT");

// Runs a job on the libuv pool and settles a promise; the references keep the arrays alive.
// They cannot stop JavaScript from detaching (transferring) a buffer while the job runs: N-API
// cannot pin a backing store. lib/ rejects resizable buffers; README documents the rest.
class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, Job job, const std::vector<Napi::TypedArray>& arrays)
      : Napi::AsyncWorker(env, "batchnorm"), job_(std::move(job)), deferred_(env) {
    for (const Napi::TypedArray& a : arrays) refs_.push_back(Napi::Persistent(a));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      job_();
    } catch (const std::bad_alloc&) {
      SetError("batchnorm: out of memory for scratch space");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    e.Set("code", Napi::String::New(Env(), "ERR_BATCHNORM_OUT_OF_MEMORY"));
    deferred_.Reject(e.Value());
  }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::TypedArray>> refs_;
};

// Reads (x-or-dy, outer, C, inner) style geometry and checks it against `length`.
Geometry read_geometry(ArgReader& args, const Napi::Env& env, size_t first, int64_t length) {
  const Geometry g{args.count(first, "outer"), args.count(first + 1, "channels"),
                   args.count(first + 2, "inner")};
  int64_t size = 0;
  if (__builtin_mul_overflow(g.outer, g.channels, &size) ||
      __builtin_mul_overflow(size, g.inner, &size) || size != length)
    throw_error(env, false, "ERR_BATCHNORM_SHAPE_MISMATCH",
                "Expected outer * channels * inner to equal the data length " +
                    std::to_string(length));
  return g;
}

int64_t length_of(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_error(info.Env(), true, "ERR_BATCHNORM_INVALID_TYPE",
                std::string("Expected a Float32Array for ") + name);
  return static_cast<int64_t>(info[i].As<Napi::Float32Array>().ElementLength());
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports)
      : exec_{&select_kernels(""), 1, default_streaming_bytes(1)} {
    DefineAddon(exports, {
        InstanceMethod("configure", &Addon::Configure),
        InstanceMethod("info", &Addon::Info),
        InstanceMethod("setNumThreads", &Addon::SetNumThreads),
        InstanceMethod("streamBandwidth", &Addon::StreamBandwidth),
        InstanceMethod("allocateOutput", &Addon::AllocateOutput),
        InstanceMethod("releaseFreedMemory", &Addon::ReleaseFreedMemory),
        InstanceMethod("forwardTrain", &Addon::Sync<&Addon::ForwardTrain>),
        InstanceMethod("forwardTrainAsync", &Addon::Async<&Addon::ForwardTrain>),
        InstanceMethod("forwardInference", &Addon::Sync<&Addon::ForwardInference>),
        InstanceMethod("forwardInferenceAsync", &Addon::Async<&Addon::ForwardInference>),
        InstanceMethod("backward", &Addon::Sync<&Addon::Backward>),
        InstanceMethod("backwardAsync", &Addon::Async<&Addon::Backward>),
        InstanceMethod("batchMoments", &Addon::Sync<&Addon::BatchMoments>),
        InstanceMethod("batchMomentsAsync", &Addon::Async<&Addon::BatchMoments>),
        InstanceMethod("backwardSums", &Addon::Sync<&Addon::BackwardSums>),
        InstanceMethod("backwardSumsAsync", &Addon::Async<&Addon::BackwardSums>),
    });
  }

 private:
  using Parser = Job (Addon::*)(ArgReader&, const Napi::CallbackInfo&);

  // configure(isaCap: string, threads: number, streamingBytes?: number): chooses the kernels,
  // the thread count and (for tests and benchmarks) the size from which outputs are streamed:
  // 0 always, Infinity never, absent the default for the thread count. Returns info().
  Napi::Value Configure(const Napi::CallbackInfo& info) {
    if (!info[0].IsString())
      throw_error(info.Env(), true, "ERR_BATCHNORM_INVALID_TYPE", "Expected a string for isa");
    int64_t streaming = kDefaultStreaming;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      const double bytes = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1.0;
      if (!(bytes >= 0.0))
        throw_error(info.Env(), false, "ERR_BATCHNORM_INVALID_OPTION",
                    "Expected streamingBytes to be a number >= 0");
      streaming = bytes >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(bytes);
    }
    const int threads = read_threads(info, 1);  // every check before anything changes
    streaming_ = streaming;
    use_threads(threads);
    exec_.kernels = &select_kernels(info[0].As<Napi::String>().Utf8Value());
    return Info(info);
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("isa", exec_.kernels->isa);
    o.Set("threads", exec_.threads);
    o.Set("streamingBytes", static_cast<double>(exec_.streaming_bytes));
    o.Set("supportedIsas", supported_isas());
#ifdef _OPENMP
    o.Set("openmp", true);
#else
    o.Set("openmp", false);
#endif
    o.Set("waitPolicy", kWaitPolicyAtLoad);
    o.Set("spinCount", kSpinCountAtLoad);
    o.Set("mallocTuned", malloc_tuned_);
    return o;
  }

  // setNumThreads(n): a positive integer; without OpenMP it stays 1.
  Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
    use_threads(read_threads(info, 0));
    return info.Env().Undefined();
  }

  // Argument `at`: a thread count in [1, 4096].
  static int read_threads(const Napi::CallbackInfo& info, size_t at) {
    ArgReader args(info);
    const int64_t n = args.count(at, "threads");
    if (n < 1 || n > 4096)
      throw_error(info.Env(), false, "ERR_BATCHNORM_INVALID_THREADS",
                  "Expected threads to be an integer in [1, 4096]");
    return static_cast<int>(n);
  }

  // Runs later ops on `n` threads (one without OpenMP), with the streaming threshold for them.
  void use_threads([[maybe_unused]] int n) {
#ifdef _OPENMP
    exec_.threads = n;
#endif
    exec_.streaming_bytes =
        streaming_ == kDefaultStreaming ? default_streaming_bytes(exec_.threads) : streaming_;
  }

  // streamBandwidth(kernel: 'copy' | 'triad', floats, threads, reps) -> GB/s (median).
  Napi::Value StreamBandwidth(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsString())
      throw_error(env, true, "ERR_BATCHNORM_INVALID_TYPE", "Expected 'copy' or 'triad' for kernel");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (name != "copy" && name != "triad")
      throw_error(env, false, "ERR_BATCHNORM_INVALID_TYPE", "Expected 'copy' or 'triad' for kernel");
    ArgReader args(info);
    const int64_t floats = args.count(1, "floats"), threads = args.count(2, "threads");
    const int64_t reps = args.count(3, "reps");
    // Bounded so that the int casts below hold and three arrays stay within 12 GiB.
    if (floats < 1 || floats > (int64_t{1} << 30) || threads < 1 || threads > 4096 || reps < 1 ||
        reps > 1000000)
      throw_error(env, false, "ERR_BATCHNORM_INVALID_SHAPE",
                  "Expected floats in [1, 2^30], threads in [1, 4096] and reps in [1, 10^6]");
    try {
      return Napi::Number::New(
          env, stream_bandwidth(name == "copy" ? StreamKernel::kCopy : StreamKernel::kTriad,
                                floats, static_cast<int>(threads), static_cast<int>(reps)));
    } catch (const std::bad_alloc&) {
      throw_error(env, false, "ERR_BATCHNORM_OUT_OF_MEMORY", "streamBandwidth: out of memory");
    }
  }

  // allocateOutput(bytes) -> ArrayBuffer: a new, uninitialised buffer of `bytes` for a large
  // output that a kernel overwrites entirely (lib/outputs.ts): taken from malloc's heap, where the
  // memory of an earlier output is reused (malloc_tuning.h), with huge pages advised for its
  // whole 2 MiB pages, so that memory the heap must still map faults 512x less (huge_pages.h).
  Napi::Value AllocateOutput(const Napi::CallbackInfo& info) {
    ArgReader args(info);
    const int64_t bytes = args.count(0, "bytes");
    Napi::Buffer<uint8_t> block;
    try {
      LargeBlocksFromHeap from_heap;
      block = Napi::Buffer<uint8_t>::New(info.Env(), static_cast<size_t>(bytes));  // uninitialised
    } catch (const Napi::Error&) {  // past Buffer's size limit, or no memory
      throw_error(info.Env(), false, "ERR_BATCHNORM_OUT_OF_MEMORY",
                  "allocateOutput: no buffer of " + std::to_string(bytes) + " bytes");
    }
    advise_huge_pages(block.Data(), block.Length());
    return block.ArrayBuffer();
  }

  // releaseFreedMemory() -> boolean: the heap's free memory back to the OS (malloc_tuning.h).
  Napi::Value ReleaseFreedMemory(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), release_freed_memory());
  }

  template <Parser parse>
  Napi::Value Sync(const Napi::CallbackInfo& info) {
    ArgReader args(info);
    Job job = (this->*parse)(args, info);
    try {
      job();
    } catch (const std::bad_alloc&) {
      throw_error(info.Env(), false, "ERR_BATCHNORM_OUT_OF_MEMORY",
                  "batchnorm: out of memory for scratch space");
    }
    return info.Env().Undefined();
  }

  template <Parser parse>
  Napi::Value Async(const Napi::CallbackInfo& info) {
    ArgReader args(info);
    Job job = (this->*parse)(args, info);
    JobWorker* worker = new JobWorker(info.Env(), std::move(job), args.arrays());
    worker->Queue();
    return worker->promise();
  }

  // forwardTrain(x, outer, C, inner, y, gamma, beta, eps, momentum, runningMean, runningVar,
  //              unbiased, saveMean, saveInvStd, momentsCount, momentsMean, momentsM2, relu,
  //              residual, reluMask, freshOutputs, exchange)
  // momentsMean and momentsM2 (Float64Array(C), or both null/absent): normalise with these
  // moments over momentsCount values per channel (read only with them) instead of x's own.
  // relu requires reluMask (ceil(n / 8) bytes), which is refused without it; relu and the
  // residual may be left out (SPEC section 7: no ReLU, no residual). With an exchange (see
  // read_sync), the moments are every replica's, shared channel by channel; the values per
  // channel are then counted after the exchange.
  Job ForwardTrain(ArgReader& args, const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    const int64_t n = length_of(info, 0, "x");
    const Geometry g = read_geometry(args, env, 1, n);
    const int64_t C = g.channels;
    double* report = nullptr;
    const std::shared_ptr<Synchronized> sync = read_sync(args, info, 21, C, false, &report);
    TrainArgs a{};
    a.x = args.f32(0, "x", n, false, false);
    a.y = args.f32(4, "out", n, false, true);
    a.gamma = args.f32(5, "gamma", C, true, false);
    a.beta = args.f32(6, "beta", C, true, false);
    a.eps = args.number(7, "eps");
    a.momentum = args.number(8, "momentum");
    a.running_mean = args.f32(9, "runningMean", C, true, true);
    a.running_var = args.f32(10, "runningVar", C, true, true);
    a.unbiased = args.boolean(11, "unbiased");
    a.save_mean = args.f32(12, "saveMean", C, false, true);
    a.save_inv_std = args.f32(13, "saveInvStd", C, false, true);
    a.given.mean = args.f64(15, "momentsMean", C, true, false);
    a.given.m2 = args.f64(16, "momentsM2", C, true, false);
    const bool moments_given = given_pair(info, 15, "momentsMean and momentsM2");
    if (moments_given) a.given.count = args.count(14, "momentsCount");
    a.relu = args.boolean(17, "relu", false);
    a.residual = args.f32(18, "residual", n, true, Access::kAlone);
    a.relu_mask = args.u8(19, "reluMask", mask_bytes(n), !a.relu, Access::kWritten);
    if (!a.relu && a.relu_mask)
      throw_error(env, false, "ERR_BATCHNORM_INVALID_OPTION", "Expected no reluMask without relu");
    check_eps(env, a.eps);
    if (!(a.momentum >= 0.0 && a.momentum <= 1.0))
      throw_error(env, false, "ERR_BATCHNORM_INVALID_MOMENTUM",
                  "Expected momentum to be a number in [0, 1]");
    if (sync && moments_given)
      throw_error(env, false, "ERR_BATCHNORM_INVALID_OPTION", "Expected no moments with an exchange");
    a.sync = sync.get();
    // With no channels, outer * inner may pass int64 (the size is 0 whatever they are); a
    // product that overflows is certainly more than one value per channel.
    int64_t per_channel = a.given.count;
    if (!sync && (moments_given || !__builtin_mul_overflow(g.outer, g.inner, &per_channel)) &&
        per_channel < 2)
      throw_error(env, false, "ERR_BATCHNORM_TOO_FEW_VALUES",
                  "Expected more than 1 value per channel when training");
    args.check_overlaps({{"out", "x"}, {"out", "residual"}});
    return [e = exec_for(args.boolean(20, "freshOutputs", false), n), g, a, sync, report] {
      forward_train(e, g, a);
      if (sync) report_outcome(*sync, report);
    };
  }

  // batchMoments(x, outer, C, inner, mean, m2): Float64Array(C) outputs.
  Job BatchMoments(ArgReader& args, const Napi::CallbackInfo& info) {
    const int64_t n = length_of(info, 0, "x");
    const Geometry g = read_geometry(args, info.Env(), 1, n);
    MomentsArgs a{};
    a.x = args.f32(0, "x", n, false, false);
    a.mean = args.f64(4, "mean", g.channels, false, true);
    a.m2 = args.f64(5, "m2", g.channels, false, true);
    args.check_overlaps();
    return [e = exec_, g, a] { batch_moments(e, g, a); };
  }

  // forwardInference(x, outer, C, inner, y, gamma, beta, eps, runningMean, runningVar, relu,
  //                  residual, freshOutputs) (the last three may be left out)
  Job ForwardInference(ArgReader& args, const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    const int64_t n = length_of(info, 0, "x");
    const Geometry g = read_geometry(args, env, 1, n);
    const int64_t C = g.channels;
    InferenceArgs a{};
    a.x = args.f32(0, "x", n, false, false);
    a.y = args.f32(4, "out", n, false, true);
    a.gamma = args.f32(5, "gamma", C, true, false);
    a.beta = args.f32(6, "beta", C, true, false);
    a.eps = args.number(7, "eps");
    a.running_mean = args.f32(8, "runningMean", C, false, false);
    a.running_var = args.f32(9, "runningVar", C, false, false);
    a.relu = args.boolean(10, "relu", false);
    a.residual = args.f32(11, "residual", n, true, Access::kAlone);
    check_eps(env, a.eps);
    args.check_overlaps({{"out", "x"}, {"out", "residual"}});
    return [e = exec_for(args.boolean(12, "freshOutputs", false), n), g, a] {
      forward_inference(e, g, a);
    };
  }

  // backward(dy, x, outer, C, inner, dx, gamma, saveMean, saveInvStd, useGlobalStats,
  //          dgamma, dbeta, totalCount, totalSumDy, totalSumDyXmu, ownSumDy, ownSumDyXmu,
  //          reluMask, dresidual, freshOutputs, exchange)
  // The sums are Float64Array(C) or null/absent, in pairs: with the totals, dx comes from them
  // over totalCount values per channel (read only with them); with the own sums too, dgamma
  // and dbeta come from those and dy and x are read once. A reluMask means relu: the gradient
  // is masked first (SPEC section 7); dresidual receives it. (dx, dy) and (dresidual, dy) are
  // in-place pairs, not both at once. The last four may be left out. With an exchange (see
  // read_sync), dx comes from every replica's sums over totalCount values per channel, shared
  // channel by channel.
  Job Backward(ArgReader& args, const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    const int64_t n = length_of(info, 0, "dy");
    const Geometry g = read_geometry(args, env, 2, n);
    const int64_t C = g.channels;
    double* report = nullptr;
    const std::shared_ptr<Synchronized> sync = read_sync(args, info, 20, C, true, &report);
    BackwardArgs a{};
    a.dy = args.f32(0, "dy", n, false, false);
    a.x = args.f32(1, "x", n, false, false);
    a.dx = args.f32(5, "dx", n, false, true);
    a.gamma = args.f32(6, "gamma", C, true, false);
    a.save_mean = args.f32(7, "saveMean", C, false, false);
    a.save_inv_std = args.f32(8, "saveInvStd", C, false, false);
    a.use_global_stats = args.boolean(9, "useGlobalStats");
    a.dgamma = args.f32(10, "dgamma", C, false, true);
    a.dbeta = args.f32(11, "dbeta", C, false, true);
    a.total.dy = args.f64(13, "totalSumDy", C, true, false);
    a.total.dy_xc = args.f64(14, "totalSumDyXmu", C, true, false);
    a.own.dy = args.f64(15, "ownSumDy", C, true, false);
    a.own.dy_xc = args.f64(16, "ownSumDyXmu", C, true, false);
    const bool totals_given = given_pair(info, 13, "totalSumDy and totalSumDyXmu");
    const bool own_given = given_pair(info, 15, "ownSumDy and ownSumDyXmu");
    if (totals_given) a.total_count = args.count(12, "totalCount");
    a.relu_mask = args.u8(17, "reluMask", mask_bytes(n), true, Access::kAlone);
    a.dresidual = args.f32(18, "dresidual", n, true, Access::kWritten);
    if ((own_given && !totals_given) || (totals_given && a.use_global_stats))
      throw_error(env, false, "ERR_BATCHNORM_INVALID_OPTION",
                  "Expected the own sums only with the total sums, and neither with "
                  "useGlobalStats");
    if (sync) {
      if (totals_given || a.use_global_stats)
        throw_error(env, false, "ERR_BATCHNORM_INVALID_OPTION",
                    "Expected no sums and no useGlobalStats with an exchange");
      a.total_count = args.count(12, "totalCount");
      a.sync = sync.get();
    }
    args.check_overlaps({{"dx", "dy"}, {"dresidual", "dy"}});
    return [e = exec_for(args.boolean(19, "freshOutputs", false), n), g, a, sync, report] {
      backward(e, g, a);
      if (sync) report_outcome(*sync, report);
    };
  }

  // backwardSums(dy, x, outer, C, inner, saveMean, sumDy, sumDyXmu, reluMask): Float64Array(C)
  // outputs; a reluMask (may be left out) means relu: the sums are of the masked gradient.
  Job BackwardSums(ArgReader& args, const Napi::CallbackInfo& info) {
    const int64_t n = length_of(info, 0, "dy");
    const Geometry g = read_geometry(args, info.Env(), 2, n);
    const int64_t C = g.channels;
    GradSumsArgs a{};
    a.dy = args.f32(0, "dy", n, false, false);
    a.x = args.f32(1, "x", n, false, false);
    a.save_mean = args.f32(5, "saveMean", C, false, false);
    a.sum_dy = args.f64(6, "sumDy", C, false, true);
    a.sum_dy_xc = args.f64(7, "sumDyXmu", C, false, true);
    a.relu_mask = args.u8(8, "reluMask", mask_bytes(n), true, Access::kAlone);
    args.check_overlaps();
    return [e = exec_, g, a] { backward_sums(e, g, a); };
  }

  // The execution for an op whose outputs of `n` floats are `fresh`: memory the package has just
  // allocated for this call (lib/outputs.ts), so in no cache. A cached store would first read
  // each of their lines from memory; streaming stores skip that read. Calls without destinations
  // ran 1.2-2x faster from 128 KiB outputs on in a loop, 8-40% on the benchmark's 1 MB cells
  // (lib/outputs.ts); smaller blocks may come back from malloc still cached. The memory traffic
  // is the same either way: the caller's next read of the output comes from memory instead. A
  // threshold set by configure() stands.
  Execution exec_for(bool fresh_outputs, int64_t n) const {
    Execution e = exec_;
    if (fresh_outputs && streaming_ == kDefaultStreaming &&
        n * static_cast<int64_t>(sizeof(float)) >= kFreshStreamingBytes)
      e.streaming_bytes = 0;
    return e;
  }

  // The exchange of a synchronized forwardTrain or backward (argument i; null or absent: none):
  // { slots, arrivals, rounds, broken, report, rank, size, timeoutMs, timeoutCode, mismatchCode }
  // as lib/collective/worker-group.ts lays them out (channel_exchange.h), views of channels
  // [0, C). *report receives report_outcome's numbers.
  static std::shared_ptr<Synchronized> read_sync(ArgReader& args, const Napi::CallbackInfo& info,
                                                 size_t i, int64_t C, bool backward,
                                                 double** report) {
    const Napi::Env env = info.Env();
    if (!given(info, i)) return nullptr;
    if (!info[i].IsObject())
      throw_error(env, true, "ERR_BATCHNORM_INVALID_TYPE", "Expected an object for exchange");
    // Every property first: a getter or Proxy trap (JavaScript) may detach a buffer, so none may
    // run once an array's memory has been taken (hence also read_sync before the op's arrays).
    const Napi::Object o = info[i].As<Napi::Object>();
    const Napi::Value rank_v = o.Get("rank"), size_v = o.Get("size"), timeout_v = o.Get("timeoutMs");
    const Napi::Value code_v = o.Get("timeoutCode"), mismatch_v = o.Get("mismatchCode");
    const Napi::Value slots_v = o.Get("slots"), arrivals_v = o.Get("arrivals"), rounds_v = o.Get("rounds");
    const Napi::Value broken_v = o.Get("broken"), report_v = o.Get("report");
    const double rank = args.number(rank_v, "exchange.rank");
    const double size = args.number(size_v, "exchange.size");
    const double timeout = args.number(timeout_v, "exchange.timeoutMs");
    const double code = args.number(code_v, "exchange.timeoutCode");
    const double mismatch = args.number(mismatch_v, "exchange.mismatchCode");
    const auto is_code = [](double v) { return v > 0 && v <= INT32_MAX && v == std::floor(v); };
    if (!(size >= 1 && size <= 65536 && size == std::floor(size) && rank >= 0 && rank < size &&
          rank == std::floor(rank) && timeout > 0 && is_code(code) && is_code(mismatch)))
      throw_error(env, false, "ERR_BATCHNORM_INVALID_OPTION",
                  "Expected an integer size in [1, 65536], rank in [0, size), timeoutMs > 0 and "
                  "int32 timeoutCode and mismatchCode > 0 in exchange");
    ExchangeMemory m{};
    m.rank = static_cast<int>(rank);
    m.size = static_cast<int>(size);
    m.timeout_ms = timeout;
    m.timeout_code = static_cast<int32_t>(code);
    m.mismatch_code = static_cast<int32_t>(mismatch);
    m.op = ChannelExchange::op_id(backward, C);
    m.slots = args.f64(slots_v, "exchange.slots", C * 2 * m.size * ChannelExchange::kFields);
    m.arrivals = args.i32(arrivals_v, "exchange.arrivals", C);
    m.rounds = args.i32(rounds_v, "exchange.rounds", C);
    m.broken = args.i32(broken_v, "exchange.broken", 1);
    *report = args.f64(report_v, "exchange.report", 6);
    return std::make_shared<Synchronized>(m);
  }

  // What a synchronized op left for lib/: [status, channel, count, rank, op, own op], status 0
  // (done), 1 (a wait timed out), 2 (the group broke), 3 (fewer than 2 values per channel in all)
  // or 4 (a replica runs another op), the channel of a failed wait, the values per channel over
  // every replica (forward), and with status 4 the first replica found running another op, that
  // op and this replica's (ChannelExchange::op_id).
  static void report_outcome(const Synchronized& s, double* report) {
    const ChannelExchange::Status status = s.exchange.status();
    report[0] = status != ChannelExchange::kOk ? status : s.too_few ? 3 : 0;
    report[1] = static_cast<double>(s.exchange.failed_channel());
    report[2] = static_cast<double>(s.total_count.load());
    report[3] = s.exchange.mismatched_rank();
    report[4] = s.exchange.mismatched_op();
    report[5] = s.exchange.op();
  }

  // Whether optional argument i was given (neither absent, undefined nor null).
  static bool given(const Napi::CallbackInfo& info, size_t i) {
    return info.Length() > i && !info[i].IsNull() && !info[i].IsUndefined();
  }

  // Bytes of the bit-packed ReLU mask of n elements.
  static int64_t mask_bytes(int64_t n) { return n / 8 + (n % 8 != 0); }

  // Whether arguments i and i + 1, two arrays that only make sense together, were given: both
  // or neither. (From the arguments, not their data: with no channels the arrays are empty, and
  // an empty array's data may be null.)
  static bool given_pair(const Napi::CallbackInfo& info, size_t i, const char* names) {
    const bool first = given(info, i);
    if (first != given(info, i + 1))
      throw_error(info.Env(), true, "ERR_BATCHNORM_INVALID_TYPE",
                  std::string("Expected both or neither of ") + names);
    return first;
  }

  static void check_eps(const Napi::Env& env, double eps) {
    if (!(eps > 0.0 && std::isfinite(eps)))
      throw_error(env, false, "ERR_BATCHNORM_INVALID_EPS",
                  "Expected eps to be a finite number greater than 0");
  }

  Execution exec_;
  const bool malloc_tuned_ = keep_freed_memory_mapped();
  // The streaming threshold configure() set, or kDefaultStreaming: the default for the thread
  // count, which setNumThreads then follows.
  static constexpr int64_t kDefaultStreaming = -1;
  // Fresh outputs this large stream (exec_for).
  static constexpr int64_t kFreshStreamingBytes = int64_t{128} << 10;
  int64_t streaming_ = kDefaultStreaming;
};

}  // namespace
}  // namespace bn

using BatchNormAddon = bn::Addon;
NODE_API_ADDON(BatchNormAddon)
