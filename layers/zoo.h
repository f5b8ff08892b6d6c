// The reference models of DESIGN.md, each a torch.nn.Sequential equivalent, so a state_dict
// moves between gradscope and PyTorch key for key. With in_channels C, image size S, classes K:
//
//   mlp        nn.Sequential(nn.Flatten(), nn.Linear(C*S*S, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
//                            nn.Linear(128, K))                                    # 235,146 params (1x28x28, 10)
//   lenet5     nn.Sequential(nn.Conv2d(C, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
//                            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
//                            nn.Linear(16*M*M, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
//                            nn.Linear(84, K))          # M = (S/2 - 4)/2: Linear(400, 120) at 28; 61,706 params
//   fashionnet nn.Sequential(nn.Conv2d(C, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
//                            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
//                            nn.Flatten(), nn.Linear(64*(S/4)*(S/4), 128), nn.ReLU(),
//                            nn.Linear(128, K))         # Linear(3136, 128) at 28; 421,834 params
//   resnet8    nn.Sequential(nn.Conv2d(C, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
//                            BasicBlock(16, 16), BasicBlock(16, 32, stride=2), BasicBlock(32, 64, stride=2),
//                            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, K))
//              BasicBlock as torchvision.models.resnet.BasicBlock with downsample =
//              nn.Sequential(conv1x1(in, out, stride, bias=False), nn.BatchNorm2d(out)) when stride != 1
//              or in != out. Any image size >= 8 works (adaptive pooling); 78,042 params for 3x32x32, 10 classes.
//
// Parameter counts are checked against torch in tests/interop/test_layers_state_dict.py.
#pragma once
#include <string>
#include <vector>

#include "layers/module.h"

namespace gs::nn {

// Unknown names throw listing the known ones; impossible sizes (an image too small) throw too.
ModulePtr make_model(const std::string& name, int64_t in_channels = 1, int64_t num_classes = 10,
                     int64_t image_size = 28);
std::vector<std::string> model_names();  // mlp, lenet5, fashionnet, resnet8

}  // namespace gs::nn
