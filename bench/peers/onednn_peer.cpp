// oneDNN 2.x as a benchmark peer, speaking the line protocol of bench/peers/peer-process.ts.
// The bench compiles it on first use (bench/backends/onednn.ts): g++ -O2 -fopenmp ... -ldnnl.
//
// One path, "prealloc": oneDNN has no allocating API, every buffer is created at setup and
// reused by every call. Ops: batch_normalization forward training (scale and shift), forward
// inference (use_global_stats), backward (prop_kind::backward: diff_src, diff_scale, diff_shift,
// from the statistics of a forward training run at setup), and trainStep (forward training,
// then backward). [N, C] data is described as N x C x 1 x 1 in nhwc, the same bytes: oneDNN's
// plain nc batch normalization is its slow reference kernel, the 4-D view takes its JIT one.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace {

using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;
using Args = std::unordered_map<int, memory>;

dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/** The data's memory descriptor: logical dims N, C, spatial... in the bench's layout. */
memory::desc data_desc(const std::vector<memory::dim>& dims, const std::string& layout) {
  using tag = memory::format_tag;
  if (layout == "nc" && dims.size() == 2) return {{dims[0], dims[1], 1, 1}, memory::data_type::f32, tag::nhwc};
  if (dims.size() == 4 && layout == "nchw") return {dims, memory::data_type::f32, tag::nchw};
  if (dims.size() == 4 && layout == "nhwc") return {dims, memory::data_type::f32, tag::nhwc};
  throw std::invalid_argument("only [N, C] and 4-D NCHW/NHWC data");
}

class Cell {
 public:
  Cell(const std::string& op, const std::string& layout, int threads, float eps, const std::string& data,
       const std::vector<memory::dim>& dims)
      : threads_(threads) {
    omp_set_num_threads(threads);  // before the primitives are made: oneDNN may plan for it
    const memory::dim n = [&] {
      memory::dim p = 1;
      for (auto d : dims) p *= d;
      return p;
    }();
    const memory::dim c = dims[1];
    for (auto* v : {&x_, &dy_, &y_, &dx_}) v->resize(n);
    for (auto* v : {&gamma_, &beta_, &running_mean_, &running_var_, &mean_, &var_, &dgamma_, &dbeta_}) v->resize(c);
    read_inputs(data, {&x_, &dy_, &gamma_, &beta_, &running_mean_, &running_var_});

    const auto md = data_desc(dims, layout);
    const memory::desc channel_md({c}, memory::data_type::f32, memory::format_tag::x);
    auto mem = [&](const memory::desc& d, std::vector<float>& v) { return memory(d, cpu(), v.data()); };
    const auto affine = normalization_flags::use_scale | normalization_flags::use_shift;

    if (op == "forwardInference") {
      dnnl::batch_normalization_forward::primitive_desc pd(
          {prop_kind::forward_inference, md, eps, affine | normalization_flags::use_global_stats}, cpu());
      steps_.push_back({dnnl::batch_normalization_forward(pd),
                        {{DNNL_ARG_SRC, mem(md, x_)}, {DNNL_ARG_DST, mem(md, y_)}, {DNNL_ARG_SCALE, mem(channel_md, gamma_)},
                         {DNNL_ARG_SHIFT, mem(channel_md, beta_)}, {DNNL_ARG_MEAN, mem(channel_md, running_mean_)},
                         {DNNL_ARG_VARIANCE, mem(channel_md, running_var_)}}});
      output_ = &y_;
      return;
    }
    dnnl::batch_normalization_forward::primitive_desc fwd_pd({prop_kind::forward_training, md, eps, affine}, cpu());
    Step forward{dnnl::batch_normalization_forward(fwd_pd),
                 {{DNNL_ARG_SRC, mem(md, x_)}, {DNNL_ARG_DST, mem(md, y_)}, {DNNL_ARG_SCALE, mem(channel_md, gamma_)},
                  {DNNL_ARG_SHIFT, mem(channel_md, beta_)}, {DNNL_ARG_MEAN, mem(channel_md, mean_)},
                  {DNNL_ARG_VARIANCE, mem(channel_md, var_)}}};
    if (op == "forwardTrain") {
      steps_.push_back(forward);
      output_ = &y_;
      return;
    }
    if (op != "backward" && op != "trainStep") throw std::invalid_argument("unknown op " + op);
    dnnl::batch_normalization_backward::primitive_desc bwd_pd({prop_kind::backward, md, md, eps, affine}, cpu(), fwd_pd);
    Step back{dnnl::batch_normalization_backward(bwd_pd),
              {{DNNL_ARG_SRC, mem(md, x_)}, {DNNL_ARG_DIFF_DST, mem(md, dy_)}, {DNNL_ARG_MEAN, mem(channel_md, mean_)},
               {DNNL_ARG_VARIANCE, mem(channel_md, var_)}, {DNNL_ARG_SCALE, mem(channel_md, gamma_)},
               {DNNL_ARG_SHIFT, mem(channel_md, beta_)}, {DNNL_ARG_DIFF_SRC, mem(md, dx_)},
               {DNNL_ARG_DIFF_SCALE, mem(channel_md, dgamma_)}, {DNNL_ARG_DIFF_SHIFT, mem(channel_md, dbeta_)}}};
    if (op == "backward") {
      execute({forward});  // the batch statistics the backward reads, as a training step leaves them
      steps_.push_back(back);
    } else {
      steps_ = {forward, back};
    }
    output_ = &dx_;
  }

  /** One call; returns its milliseconds. */
  // `untimed` calls, then one timed call: its milliseconds.
  double run(int untimed) {
    if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
    for (int k = 0; k < untimed; ++k) execute(steps_);
    const auto start = std::chrono::steady_clock::now();
    execute(steps_);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  void save(const std::string& file) const {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(output_->data()), static_cast<std::streamsize>(output_->size() * sizeof(float)));
    if (!out) throw std::runtime_error("cannot write " + file);
  }

 private:
  struct Step {
    dnnl::primitive primitive;
    Args args;
  };

  static void execute(const std::vector<Step>& steps) {
    static dnnl::stream stream(cpu());
    for (const auto& s : steps) s.primitive.execute(stream, s.args);
    stream.wait();
  }

  static void read_inputs(const std::string& file, std::initializer_list<std::vector<float>*> parts) {
    std::ifstream in(file, std::ios::binary);
    for (auto* v : parts) in.read(reinterpret_cast<char*>(v->data()), static_cast<std::streamsize>(v->size() * sizeof(float)));
    if (!in) throw std::runtime_error("cannot read the inputs from " + file);
  }

  int threads_;
  std::vector<float> x_, dy_, y_, dx_, gamma_, beta_, running_mean_, running_var_, mean_, var_, dgamma_, dbeta_;
  std::vector<Step> steps_;
  const std::vector<float>* output_ = nullptr;
};

std::vector<memory::dim> parse_dims(const std::string& text) {
  std::vector<memory::dim> dims;
  std::stringstream in(text);
  for (std::string d; std::getline(in, d, 'x');) dims.push_back(std::stoll(d));
  return dims;
}

std::string handle(std::map<std::string, std::unique_ptr<Cell>>& cells, const std::string& line) {
  std::istringstream words(line);
  std::string cmd, id;
  words >> cmd >> id;
  if (cmd == "setup") {
    std::string path, op, layout, data, dims;
    int threads;
    float eps;
    words >> path >> op >> layout >> threads >> eps >> data >> dims;
    if (path != "prealloc") throw std::invalid_argument("oneDNN has no allocating API; its one path preallocates");
    cells[id] = std::make_unique<Cell>(op, layout, threads, eps, data, parse_dims(dims));
    return "ok";
  }
  if (cmd == "free") {
    cells.erase(id);
    return "ok";
  }
  const auto found = cells.find(id);
  if (found == cells.end()) throw std::runtime_error("no cell " + id);
  if (cmd == "run") {
    int untimed = 0;
    words >> untimed;  // optional: stays 0 when absent
    char reply[64];
    std::snprintf(reply, sizeof reply, "ok %.6f", found->second->run(untimed));
    return reply;
  }
  if (cmd == "save") {
    std::string file;
    words >> file;
    found->second->save(file);
    return "ok";
  }
  throw std::runtime_error("unknown command " + cmd);
}

}  // namespace

int main() {
  const auto* v = dnnl::version();
  std::cout << "ready onednn " << v->major << '.' << v->minor << '.' << v->patch << std::endl;
  std::map<std::string, std::unique_ptr<Cell>> cells;
  for (std::string line; std::getline(std::cin, line);) {
    if (line.empty()) continue;
    std::string reply;
    try {
      reply = handle(cells, line);
    } catch (const std::exception& e) {  // dnnl::error included: reported, the peer lives on
      reply = std::string("error ") + e.what();
    }
    for (auto& ch : reply) if (ch == '\n') ch = ' ';
    std::cout << reply << std::endl;
  }
}
