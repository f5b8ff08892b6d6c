// inspect/anomaly: the first non-finite value is found where it is born, forward or backward,
// and named by op, module path and step; inputs that were already non-finite are pointed out.
#include "inspect/anomaly.h"

#include <gtest/gtest.h>

#include "layers/layers.h"
#include "tensor/random.h"

using namespace gs;
using namespace gs::inspect;

namespace {

// log(x - shift): a named layer that makes NaN when its input goes below `shift`.
class ShiftedLog : public nn::Module {
 public:
  explicit ShiftedLog(double shift) : shift_(shift) {}
  Tensor forward(const Tensor& x) override { return log(x - shift_); }
  std::string type_name() const override { return "ShiftedLog"; }

 private:
  double shift_;
};

// sqrt(relu(x)): finite forward, but 0.5 / sqrt(0) = inf in backward where x <= 0.
class SqrtRelu : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override { return sqrt(relu(x)); }
  std::string type_name() const override { return "SqrtRelu"; }
};

nn::ModulePtr net(nn::ModulePtr middle) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Linear>(4, 8));
  seq->push_back("danger", middle);
  seq->push_back(std::make_shared<nn::Linear>(8, 2));
  return seq;
}

}  // namespace

TEST(Anomaly, ForwardLogOfNegativeNamesOpAndModule) {
  manual_seed(0);
  auto model = net(std::make_shared<ShiftedLog>(0.0));  // Linear outputs go negative: log(<0) = nan
  AnomalyDetector detector;
  detector.watch_parameters(model->named_parameters());
  detector.set_step(17);
  try {
    (*model)(randn({3, 4}));
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    const AnomalyReport& r = e.report();
    EXPECT_FALSE(r.backward);
    EXPECT_EQ(r.op, "log");
    EXPECT_EQ(r.module, "danger");
    EXPECT_EQ(r.step, 17);
    EXPECT_TRUE(r.non_finite_inputs.empty()) << e.what();
    EXPECT_NE(std::string(e.what()).find("log (danger)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("this op made it"), std::string::npos) << e.what();
  }
}

TEST(Anomaly, BackwardDivisionByZeroFoundInBackward) {
  manual_seed(0);
  auto model = net(std::make_shared<SqrtRelu>());
  AnomalyDetector detector;
  detector.set_step(2);
  Tensor out = (*model)(randn({5, 4}));  // forward is finite
  EXPECT_FALSE(detector.first().has_value());
  try {
    backward(sum(out));
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    const AnomalyReport& r = e.report();
    EXPECT_TRUE(r.backward);
    EXPECT_EQ(r.op, "sqrt");
    EXPECT_EQ(r.module, "danger");
    EXPECT_TRUE(r.non_finite_inputs.empty()) << e.what();
  }
}

TEST(Anomaly, PointsAtAParameterThatIsAlreadyNaN) {
  manual_seed(0);
  auto model = net(std::make_shared<nn::ReLU>());
  auto named = model->named_parameters();
  named[0].second.data<float>()[3] = NAN;  // 0.weight
  AnomalyDetector detector(false);
  detector.watch_parameters(named);
  detector.set_step(0);
  EXPECT_NO_THROW((*model)(randn({2, 4})));
  ASSERT_TRUE(detector.first().has_value());
  const AnomalyReport& r = *detector.first();
  EXPECT_EQ(r.module, "0");
  ASSERT_GE(r.non_finite_inputs.size(), 1u) << r.message();
  EXPECT_NE(r.inputs[r.non_finite_inputs[0]].find("0.weight"), std::string::npos) << r.message();
}

TEST(Anomaly, DisabledOrRemovedDetectorSeesNothing) {
  manual_seed(0);
  auto model = net(std::make_shared<ShiftedLog>(0.0));
  {
    AnomalyDetector detector;
    detector.set_enabled(false);
    EXPECT_NO_THROW((*model)(randn({3, 4})));
  }
  EXPECT_NO_THROW((*model)(randn({3, 4})));  // hooks removed with the detector
}

TEST(Anomaly, LastOpOfTheForwardIsCheckedAtFlushOrBackward) {
  // Outputs are checked when the next op is recorded; the last op's at flush() or when backward
  // starts, and it is still the entry named.
  manual_seed(0);
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Linear>(4, 8));
  seq->push_back("danger", std::make_shared<ShiftedLog>(0.0));
  AnomalyDetector detector;
  detector.set_step(3);
  Tensor out = (*seq)(randn({3, 4}));  // log is the last op: nothing recorded after it yet
  try {
    detector.flush();
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    EXPECT_EQ(e.report().op, "log");
    EXPECT_EQ(e.report().module, "danger");
    EXPECT_EQ(e.report().step, 3);
  }
  AnomalyDetector again;
  Tensor out2 = (*seq)(randn({3, 4}));
  try {
    backward(sum(out2));  // sum is recorded after log: the log entry is reported first
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    EXPECT_EQ(e.report().op, "log");
    EXPECT_FALSE(e.report().backward);
  }
}

TEST(Anomaly, VouchedOutputsAreNotReadAgainAndABadOneIsReportedAtOnce) {
  manual_seed(0);
  Tensor x = randn({3, 4}).set_requires_grad(true);
  AnomalyDetector detector(false);
  Tensor y = log(x);  // NaN where x < 0
  detector.vouch(y, true);  // a probe that read y says it is finite: no second read, no report
  Tensor z = y * 2.0;       // checks the pending entry (log): vouched, so nothing is found
  detector.flush();         // z is NaN too, but pending and not vouched: found here
  ASSERT_TRUE(detector.first().has_value());
  EXPECT_EQ(detector.first()->op, "mul");
  detector.reset();
  Tensor w = log(x);
  detector.vouch(w, false);  // the probe saw NaN/Inf: reported at once, naming log
  ASSERT_TRUE(detector.first().has_value());
  EXPECT_EQ(detector.first()->op, "log");
}
