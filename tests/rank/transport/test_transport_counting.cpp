// CountingTransport (rank/transport/transport_counting.h) over the local transport: results are the
// inner transport's, and every call adds the payload it was handed to the documented side.
#include <gtest/gtest.h>

#include "rank/transport/transport_counting.h"

namespace {

using namespace sq::rank;

TEST(TransportCounting, ForwardsAndCountsPayload) {
  CountingTransport t(make_transport(TransportKind::kLocal, {}));
  EXPECT_EQ(t.world(), 1);
  EXPECT_STREQ(t.name(), "local");
  at::Tensor a = at::arange(10, at::kFloat);  // 40 bytes
  t.all_reduce_sum(a);
  EXPECT_TRUE(at::equal(a, at::arange(10, at::kFloat))) << "local all-reduce is the identity";
  at::Tensor b = at::zeros({3}, at::kDouble);  // 24 bytes, this rank is the root
  t.broadcast(b, 0);
  std::string s = "hello";
  t.broadcast_bytes(s, 0);
  const auto all = t.gather_bytes("abc", 0);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], "abc");
  t.barrier();
  EXPECT_TRUE(t.agree(Status::ok()).is_ok());
  EXPECT_EQ(t.counts().bytes_out, 40 + 24 + 5 + 3);
  EXPECT_EQ(t.counts().bytes_in, 40);  // the all-reduce result; the root receives nothing else
  EXPECT_EQ(t.counts().calls, 6);
}

}  // namespace
