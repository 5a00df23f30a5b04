#include "advgrad/nn/init.h"
#include "advgrad/nn/layers.h"

namespace advgrad {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& gen) {
  if (num_embeddings < 1 || dim < 1) throw ValueError("Embedding: sizes must be >= 1");
  Tensor w = zeros({num_embeddings, dim});
  weight = register_parameter("weight", init::normal_(w, 0.0, 1.0, gen));
}

Tensor Embedding::forward(const Tensor& indices) {
  if (indices.dtype() != DType::I64) throw TypeError("Embedding: indices must be int64, got " + indices.describe());
  // A row lookup is one_hot(indices) x table: a GEMM whose gradient scatters into the used rows.
  // (one_hot also range-checks every index.)
  int64_t V = weight.size(0), D = weight.size(1);
  Tensor flat = reshape(indices, {-1});
  Tensor rows = matmul(one_hot(flat, V, weight.dtype()), weight);
  Shape out = indices.shape();
  out.push_back(D);
  return reshape(rows, out);
}

std::string Embedding::describe() const {
  return "Embedding(" + std::to_string(weight.size(0)) + ", " + std::to_string(weight.size(1)) + ")";
}

}  // namespace advgrad
