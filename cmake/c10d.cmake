# c10d backends for the addon's process-group code (included by CMakeLists.txt after find_package(Torch)).
#
# libtorch's c10d headers compile ProcessGroupGloo / ProcessGroupNCCL only under USE_C10D_GLOO /
# USE_C10D_NCCL. Debian's libtorch target already sets USE_C10D_GLOO (and, on 2.x, USE_C10D_MPI);
# a PyTorch wheel's TorchConfig sets none of them. So this file defines them when the backend's
# headers are found, and always defines OLMO_C10D_GLOO / OLMO_C10D_NCCL to 1 or 0 for native code
# to test (`#if OLMO_C10D_NCCL`), whatever libtorch's own target said.
#
#   Gloo: <gloo/...> headers (Debian: libgloo-dev; elsewhere: GLOO_INCLUDE_DIR=/path/to/include).
#   NCCL: CUDA builds only, with <nccl.h> (Debian: libnccl-dev; PyTorch wheels: the nvidia-nccl-cu*
#         package; elsewhere NCCL_INCLUDE_DIR or NCCL_HOME). The NCCL process group itself lives in
#         libtorch_cuda, which ${TORCH_LIBRARIES} already links.
#   RCCL: ROCm builds of libtorch expose RCCL through the same ProcessGroupNCCL, with HIP defines
#         set by libtorch's own target and <rccl/rccl.h>. Not compiled on any machine this project
#         is checked on: OLMO_C10D_NCCL is set from the header only, untested.

# ---- Gloo
find_path(GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS} ENV GLOO_INCLUDE_DIR)
if(GLOO_INCLUDE_DIR)
  set(OLMO_C10D_GLOO 1)
  target_include_directories(${PROJECT_NAME} PRIVATE ${GLOO_INCLUDE_DIR})
  target_compile_definitions(${PROJECT_NAME} PRIVATE USE_C10D_GLOO)
else()
  set(OLMO_C10D_GLOO 0)
endif()

# ---- NCCL (CUDA) / RCCL (ROCm)
set(OLMO_C10D_NCCL 0)
if(TORCH_CUDA_LIBRARIES OR USE_ROCM)
  set(_nccl_hints $ENV{NCCL_HOME}/include ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS} ${TORCH_INCLUDE_DIRS})
  # a PyTorch wheel brings NCCL as the nvidia-nccl-cu* Python package
  find_program(_olmo_py NAMES python3 python HINTS ENV OLMO_TS_PYTHON)
  if(PYTHON_EXECUTABLE)
    set(_olmo_py "${PYTHON_EXECUTABLE}")
  endif()
  if(_olmo_py)
    execute_process(
      COMMAND "${_olmo_py}" -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'include'))"
      OUTPUT_VARIABLE _wheel_nccl OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND _wheel_nccl)
      list(APPEND _nccl_hints "${_wheel_nccl}")
    endif()
  endif()
  if(USE_ROCM)
    find_path(NCCL_INCLUDE_DIR rccl/rccl.h HINTS ${_nccl_hints} $ENV{ROCM_PATH}/include /opt/rocm/include)
  else()
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints})
  endif()
  if(NCCL_INCLUDE_DIR)
    set(OLMO_C10D_NCCL 1)
    target_include_directories(${PROJECT_NAME} PRIVATE ${NCCL_INCLUDE_DIR})
    target_compile_definitions(${PROJECT_NAME} PRIVATE USE_C10D_NCCL)
  endif()
endif()

target_compile_definitions(${PROJECT_NAME} PRIVATE OLMO_C10D_GLOO=${OLMO_C10D_GLOO} OLMO_C10D_NCCL=${OLMO_C10D_NCCL})
message(STATUS "olmo-ts: c10d Gloo ${OLMO_C10D_GLOO} (${GLOO_INCLUDE_DIR}), NCCL ${OLMO_C10D_NCCL} (${NCCL_INCLUDE_DIR})")

# A compile-only probe of the c10d headers with the addon's flags (not part of the addon; built by
# scripts/check-cuda-build.sh and scripts/test-torch2.sh: `cmake --build <dir> --target olmo_header_probe`).
add_library(olmo_header_probe OBJECT EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/header_probe.cc)
target_link_libraries(olmo_header_probe PRIVATE ${TORCH_LIBRARIES})
target_compile_options(olmo_header_probe PRIVATE ${TORCH_CXX_FLAGS} -Wall -Wno-unused-parameter)
target_compile_definitions(olmo_header_probe PRIVATE $<TARGET_PROPERTY:${PROJECT_NAME},COMPILE_DEFINITIONS>)
target_include_directories(olmo_header_probe PRIVATE $<TARGET_PROPERTY:${PROJECT_NAME},INCLUDE_DIRECTORIES>)
