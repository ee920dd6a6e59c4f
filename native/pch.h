// pch.h — precompiled header: the heavy libtorch and node-addon-api headers every unit includes.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>
