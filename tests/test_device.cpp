// The device boundary: Device::Reference has its own allocator and memory the host may not touch through
// raw pointers; bytes cross only through copy_in/copy_out (at, item, to_vector, from_vector, from_blob,
// to(Device), copy_to_host, copy_from_host_, printing, comparisons). Then the proof that nothing above
// core/ reads device memory: every registered attack and the ensemble evaluation run end to end on a model
// and inputs on Device::Reference and agree with the same runs on Device::CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/attacks/threat_model.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/allocator.h"
#include "advgrad/nn/models.h"

using namespace advgrad;

namespace {

const Device kDevices[] = {Device::CPU, Device::Reference};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TypeError& e) {
    return e.what();
  }
  return "(no TypeError)";
}

}  // namespace

TEST_CASE("raw host access to a Device::Reference tensor throws a TypeError naming the device") {
  Tensor r = zeros({2, 3}, DType::F32, Device::Reference);
  CHECK_THROWS_AS(r.data<float>(), TypeError);
  CHECK_THROWS_AS(r.raw_data(), TypeError);
  CHECK_THROWS_AS(zeros({4}, DType::I64, Device::Reference).data<int64_t>(), TypeError);
  const std::string m = message_of([&] { r.data<float>(); });
  CHECK(m.find("reference") != std::string::npos);
  CHECK(m.find(".to(Device::CPU)") != std::string::npos);
  CHECK(m.find("float32[2,3]") != std::string::npos);
  // Views of device memory are device memory too; the same tensor copied to the host is readable.
  CHECK_THROWS_AS(r.as_strided({3}, {1}, 3).data<float>(), TypeError);
  CHECK(r.to(Device::CPU).data<float>() != nullptr);
  CHECK(zeros({2}, DType::F64).data<double>() != nullptr);  // the host device keeps raw access
}

TEST_CASE("each device has its own allocator, and storage comes from it") {
  Allocator& cpu = allocator_for(Device::CPU);
  Allocator& reference = allocator_for(Device::Reference);
  CHECK(&cpu != &reference);
  CHECK(std::string(cpu.name()) == "cpu");
  CHECK(std::string(reference.name()) == "reference");
  CHECK(&zeros({3}, DType::F32, Device::Reference).impl().storage->allocator() == &reference);
  CHECK(&zeros({3}).impl().storage->allocator() == &cpu);
  CHECK(zeros({3}, DType::F32, Device::Reference).impl().storage->device() == Device::Reference);

  // The interface itself: allocate, copy in at an offset, copy within the device, copy out, free.
  for (Device d : kDevices) {
    Allocator& a = allocator_for(d);
    void* block = a.allocate(64);
    REQUIRE(block != nullptr);
    const char text[] = "abcdefgh";
    a.copy_in(block, 8, text, 8);
    a.copy(block, 8, block, 32, 8);
    char back[9] = {};
    a.copy_out(block, 32, back, 8);
    CHECK(std::string(back) == "abcdefgh");
    a.free(block, 64);
    CHECK(a.allocate(0) == nullptr);
  }
}

TEST_CASE("bytes round-trip in and out of tensors on both devices") {
  for (Device d : kDevices) {
    INFO(device_name(d));
    // from_vector / to_vector, all dtypes
    Tensor f = from_vector(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-7f}, {2, 3}, d);
    CHECK(f.device() == d);
    CHECK(f.to_vector<float>() == std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-7f});
    CHECK(from_vector(std::vector<double>{0.1, 0.2}, {}, d).to_vector<double>() == std::vector<double>{0.1, 0.2});
    CHECK(from_vector(std::vector<int64_t>{-5, 1LL << 40}, {}, d).to_vector<int64_t>() ==
          std::vector<int64_t>{-5, 1LL << 40});
    // at / set / item, through a permuted view
    Tensor ft = permute(f, {1, 0});
    CHECK(ft.at({2, 0}) == 3.25);
    CHECK(ft.at({0, 1}) == 0.0);
    Tensor g = f.clone();
    g.set({1, 2}, 9.5);
    CHECK(g.at({1, 2}) == 9.5);
    CHECK(f.at({1, 2}) == doctest::Approx(-1e-7));  // the clone is its own storage
    CHECK(scalar_tensor(4.25, DType::F64, d).item() == 4.25);
    // from_blob, copy_to_host and copy_from_host_ with byte offsets
    const int64_t raw[4] = {10, 20, 30, 40};
    Tensor b = from_blob(raw, {4}, DType::I64, d);
    int64_t middle[2] = {0, 0};
    b.copy_to_host(middle, sizeof middle, sizeof(int64_t));
    CHECK(middle[0] == 20);
    CHECK(middle[1] == 30);
    const int64_t last = -1;
    b.copy_from_host_(&last, sizeof last, 3 * sizeof(int64_t));
    CHECK(b.to_vector<int64_t>() == std::vector<int64_t>{10, 20, 30, -1});
    CHECK_THROWS_AS(b.copy_to_host(middle, 2 * sizeof(int64_t), 3 * sizeof(int64_t)), ValueError);
    CHECK_THROWS_AS(ft.copy_to_host(middle, 4), ValueError);  // not dense
    // arange, take_rows / put_rows
    CHECK(arange(4, DType::F32, d).to_vector<float>() == std::vector<float>{0, 1, 2, 3});
    Tensor rows = take_rows(f, {1, 0, 1});
    CHECK(rows.device() == d);
    CHECK(rows.to_vector<float>() ==
          std::vector<float>{0.0f, 7.0f, -1e-7f, 1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-7f});
    Tensor dst = zeros({2, 3}, DType::F32, d);
    put_rows(dst, {1}, from_vector(std::vector<float>{4, 5, 6}, {1, 3}, d));
    CHECK(dst.to_vector<float>() == std::vector<float>{0, 0, 0, 4, 5, 6});
    // printing and comparisons
    CHECK(f.to_string().find("3.25") != std::string::npos);
    CHECK(bitwise_equal(f, f.clone()));
    CHECK(!bitwise_equal(f, g));
    CHECK(allclose(f, f.clone()));
    CHECK(max_abs_diff(f, g) == doctest::Approx(9.5 + 1e-7));
    CHECK(nonzero_indices(from_vector(std::vector<float>{0, 2, 0, -1}, {}, d)) == std::vector<int64_t>{1, 3});
  }
  // Across devices: to() both ways keeps every byte, including NaN payloads and -0.
  Tensor host = from_vector(std::vector<float>{-0.0f, std::nanf(""), 1e-38f, 3.0f}, {2, 2});
  Tensor there = host.to(Device::Reference);
  CHECK(there.device() == Device::Reference);
  Tensor back = there.to(Device::CPU);
  CHECK(std::memcmp(back.data<float>(), host.data<float>(), 4 * sizeof(float)) == 0);
  CHECK(bitwise_equal(there, host));  // compares bytes, whatever the devices
  CHECK(zeros({0, 3}, DType::F32, Device::Reference).to(Device::CPU).numel() == 0);
}

namespace {

// The tiny CNN of test_attacks.cpp (1x8x8 inputs, 10 classes), with larger weights so attacks have work.
std::shared_ptr<Module> tiny_cnn(uint64_t seed, DType dtype, Device device) {
  Generator g(seed);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(1, 4, 3, g, 1, 1));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(4 * 4 * 4, 10, g));
  NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.mul_(4.0);
  m->to(dtype);
  m->to(device);
  return m;
}

Tensor test_inputs(int64_t n, DType dtype) {
  Generator g(7);
  NoGradGuard no_grad;
  return clamp(rand({n, 1, 8, 8}, g, dtype) * 1.4 - 0.2, 0.0, 1.0);  // many pixels exactly at 0 and 1
}

AttackOptions small_options(const std::string& name) {
  AttackOptions o;
  o.eps = name == "pgd-l2" ? 1.0 : 0.2;
  o.steps = 4, o.restarts = 2, o.queries = 25, o.target_classes = 2, o.seed = 5;
  return o;
}

}  // namespace

// In float64 the backends agree to 1e-12, so the attacks agree (sign steps and argmax ties would amplify
// float32's 1e-7 differences between backends: APGD-DLR moves a pixel by a whole step when a near-zero
// gradient entry changes sign). Float32, the working dtype, is run on Device::Reference for the contract.
TEST_CASE("every registered attack runs on Device::Reference, keeps the threat model and agrees with CPU") {
  auto on_cpu = tiny_cnn(1, DType::F64, Device::CPU), on_reference = tiny_cnn(1, DType::F64, Device::Reference);
  REQUIRE(on_reference->parameters()[0].device() == Device::Reference);
  Tensor x = test_inputs(6, DType::F64), y = argmax(predict(*on_cpu, x), 1);
  Tensor xr = x.to(Device::Reference), yr = y.to(Device::Reference);
  for (const std::string& name : attack_names()) {
    INFO(name);
    const AttackOptions o = small_options(name);
    AttackResult cpu = make_attack(name, o)->run(*on_cpu, x, y);
    AttackResult ref = make_attack(name, o)->run(*on_reference, xr, yr);
    REQUIRE(ref.x_adv.device() == Device::Reference);
    CHECK(max_abs_diff(ref.x_adv.to(Device::CPU), cpu.x_adv) <= 1e-4);
    CHECK(ref.fooled == cpu.fooled);
    CHECK(ref.forward_samples == cpu.forward_samples);
    CHECK(ref.gradient_samples == cpu.gradient_samples);
  }
  // The training form too.
  AttackOptions o;
  o.eps = 0.2, o.steps = 3, o.skip_misclassified = false;
  Tensor a = make_attack("pgd", o)->perturb(*on_cpu, x, y, 2);
  Tensor b = make_attack("pgd", o)->perturb(*on_reference, xr, yr, 2);
  CHECK(max_abs_diff(b.to(Device::CPU), a) <= 1e-4);
}

TEST_CASE("every registered attack keeps the threat model exactly on Device::Reference in float32") {
  auto model = tiny_cnn(1, DType::F32, Device::Reference);
  Tensor x = test_inputs(6, DType::F32).to(Device::Reference);
  Tensor y = argmax(predict(*model, x), 1);
  for (const std::string& name : attack_names()) {
    INFO(name);
    const AttackOptions o = small_options(name);
    AttackResult r = make_attack(name, o)->run(*model, x, y);
    REQUIRE(r.x_adv.device() == Device::Reference);
    REQUIRE(r.x_adv.dtype() == DType::F32);
    CHECK(max_perturbation(r.x_adv, x, name == "pgd-l2" ? Norm::L2 : Norm::Linf) <= o.eps);  // exact, in double
    for (double v : r.x_adv.to_vector<double>()) {
      CHECK(v >= 0.0);
      CHECK(v <= 1.0);
    }
  }
}

TEST_CASE("evaluate() with the ensemble preset gives the same report on Device::Reference as on CPU") {
  auto on_cpu = tiny_cnn(2, DType::F64, Device::CPU), on_reference = tiny_cnn(2, DType::F64, Device::Reference);
  Tensor x = test_inputs(8, DType::F64), y = argmax(predict(*on_cpu, x), 1);
  EvalOptions options;
  options.ensemble = true;
  options.batch_size = 5;  // two batches, the second one short
  const std::vector<AttackSpec> attacks = ensemble_preset(0.15, 3, 0.04);
  EvalReport cpu = evaluate(*on_cpu, x, y, attacks, options);
  EvalReport ref = evaluate(*on_reference, x.to(Device::Reference), y.to(Device::Reference), attacks, options);
  CHECK(ref.n == cpu.n);
  CHECK(ref.clean_accuracy == cpu.clean_accuracy);
  CHECK(ref.robust_accuracy == cpu.robust_accuracy);
  CHECK(ref.robust == cpu.robust);
  CHECK(ref.forward_samples == cpu.forward_samples);
  REQUIRE(ref.attacks.size() == cpu.attacks.size());
  for (size_t i = 0; i < cpu.attacks.size(); ++i) {
    INFO(cpu.attacks[i].name);
    CHECK(ref.attacks[i].name == cpu.attacks[i].name);
    CHECK(ref.attacks[i].accuracy == cpu.attacks[i].accuracy);
    CHECK(ref.attacks[i].forward_samples == cpu.attacks[i].forward_samples);
    CHECK(ref.attacks[i].gradient_samples == cpu.attacks[i].gradient_samples);
    CHECK(ref.attacks[i].max_perturbation == doctest::Approx(cpu.attacks[i].max_perturbation).epsilon(1e-4));
  }
  CHECK(cpu.robust_accuracy < cpu.clean_accuracy);  // the attacks did something, so agreement means something
}
