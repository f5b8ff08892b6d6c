// The tuned conv2d variants defined outside conv2d.cpp, registered by its tables:
// "direct" (conv2d_direct.cpp: padded planes, register-blocked vector loops, OpenMP over
// sample x channel-block tiles) and "onednn" (conv2d_dnnl.cpp, f32 only, when GS_DNNL is set).
#pragma once
#include "kernels/cpu/conv2d.h"

namespace gs::kernels {

template <class T> void conv2d_direct(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2d_backward_data_direct(const Conv2dShape& s, const T* gy, const T* w, T* gx);
template <class T> void conv2d_backward_weight_direct(const Conv2dShape& s, const T* x, const T* gy, T* gw, T* gbias);

#ifdef GS_DNNL
void conv2d_onednn(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_data_onednn(const Conv2dShape& s, const float* gy, const float* w, float* gx);
void conv2d_backward_weight_onednn(const Conv2dShape& s, const float* x, const float* gy, float* gw, float* gbias);
#endif

}  // namespace gs::kernels
