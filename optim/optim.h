// Everything of the optim room in one include: optimizers (SGD, Adam, AdamW, Rprop, RMSprop) and
// make_optimizer, gradient clipping, LR schedules and make_scheduler.
//
//   auto opt = gs::optim::make_optimizer("adamw", params, {{"lr", 3e-4}});
//   auto sched = gs::optim::make_scheduler("warmup=500+cosine", *opt, steps_per_epoch, epochs);
//   for (batch : loader) {
//     opt->zero_grad();
//     gs::backward(loss(batch));
//     double norm = gs::optim::clip_grad_norm(params, 1.0);
//     opt->step();
//     sched->step();
//   }
#pragma once
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "optim/optimizers.h"
