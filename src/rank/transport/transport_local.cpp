#include "rank/transport/transport_local.h"

#include "common/check.h"
#include "rank/transport/transport_dtype.h"

namespace sq::rank {
namespace {

class LocalTransport final : public Transport {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  const char* name() const override { return "local"; }

  void all_reduce_sum(at::Tensor& t) override {
    // Same dtype contract as the multi-rank transports, so single-process runs catch misuse.
    require_reducible(t, "local", 0, "all_reduce_sum");
  }
  void broadcast(at::Tensor& t, int root) override { check_root(root, "broadcast"); }
  void send(const at::Tensor&, int dst, int tag) override {
    SQ_CHECK(false, "local transport: send(dst=" << dst << ", tag=" << tag
                                                 << ") has no peer in a one-process job; the "
                                                    "caller must not send when world() == 1");
  }
  void recv(at::Tensor&, int src, int tag) override {
    SQ_CHECK(false, "local transport: recv(src=" << src << ", tag=" << tag
                                                 << ") has no peer in a one-process job; the "
                                                    "caller must not receive when world() == 1");
  }
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    check_root(root, "gather_bytes");
    return {mine};
  }
  void broadcast_bytes(std::string&, int root) override { check_root(root, "broadcast_bytes"); }
  void barrier() override {}

 private:
  static void check_root(int root, const char* op) {
    SQ_CHECK(root == 0,
             "local transport: " << op << " with root " << root << ", but the only rank is 0");
  }
};

}  // namespace

std::unique_ptr<Transport> make_local_transport(const TransportOptions&) {
  return std::make_unique<LocalTransport>();
}

}  // namespace sq::rank
