# cmake --install: the libraries, the advgrad command, the public headers under include/advgrad/ (the
# source layout), the CMake package (find_package(advgrad): advgrad::advgrad and one target per layer)
# and advgrad.pc for pkg-config. docs/PACKAGING.md describes the result.
include(CMakePackageConfigHelpers)
set(ADVGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/advgrad)

install(TARGETS ${ADVGRAD_LAYER_LIBRARIES} advgrad EXPORT advgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET advgrad_cli)
  install(TARGETS advgrad_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Public headers only. Left out, because no public header includes them: the kernels' internals
# (core/backends/, which include Eigen), onnx/export_graph.h (protobuf) and train/json_fields.h (nlohmann).
# scripts/check_package.sh compiles every installed header against the installed tree alone.
set(advgrad_header_dirs core autograd nn data attacks train)
if(ADVGRAD_ONNX)
  list(APPEND advgrad_header_dirs onnx)
endif()
foreach(dir ${advgrad_header_dirs})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/advgrad
    FILES_MATCHING PATTERN "*.h"
    PATTERN "backends" EXCLUDE PATTERN "export_graph.h" EXCLUDE PATTERN "json_fields.h" EXCLUDE)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/advgrad.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/advgrad)

# The package: targets, config (which finds what the targets need), version.
get_target_property(advgrad_core_type advgrad_core TYPE)
if(advgrad_core_type STREQUAL "SHARED_LIBRARY")
  set(ADVGRAD_SHARED ON)
else()
  set(ADVGRAD_SHARED OFF)
endif()
install(EXPORT advgradTargets NAMESPACE advgrad:: DESTINATION ${ADVGRAD_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/advgradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/advgradConfig.cmake INSTALL_DESTINATION ${ADVGRAD_CMAKE_DIR})
# 0.x: a minor version may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/advgradConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/advgradConfig.cmake ${PROJECT_BINARY_DIR}/cmake/advgradConfigVersion.cmake
  DESTINATION ${ADVGRAD_CMAKE_DIR})

# advgrad.pc. The prefix is found from the .pc file's own place (${pcfiledir}), so the installed tree can be
# moved, or installed with `cmake --install --prefix DIR`. Libraries are listed users first, core last.
file(RELATIVE_PATH ADVGRAD_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" ADVGRAD_PC_TO_PREFIX "${ADVGRAD_PC_TO_PREFIX}")
set(ADVGRAD_PC_CFLAGS "")
set(ADVGRAD_PC_LIBS "-ladvgrad_train -ladvgrad_attacks")
if(ADVGRAD_ONNX)
  string(APPEND ADVGRAD_PC_LIBS " -ladvgrad_onnx")
endif()
string(APPEND ADVGRAD_PC_LIBS " -ladvgrad_nn -ladvgrad_autograd -ladvgrad_data -ladvgrad_core")
set(ADVGRAD_PC_DEPS "-lstb -lz")  # what the libraries themselves link
if(ADVGRAD_ONNX)
  string(PREPEND ADVGRAD_PC_DEPS "-lonnx -lonnx_proto -lprotobuf ")
endif()
if(ADVGRAD_OPENMP)
  set(ADVGRAD_PC_CFLAGS "-DADVGRAD_HAVE_OPENMP ${OpenMP_CXX_FLAGS}")
  string(APPEND ADVGRAD_PC_LIBS " ${OpenMP_CXX_FLAGS}")
endif()
if(ADVGRAD_SHARED)
  set(ADVGRAD_PC_LIBS_PRIVATE "${ADVGRAD_PC_DEPS}")
else()  # static archives: a program links their dependencies itself
  string(APPEND ADVGRAD_PC_LIBS " ${ADVGRAD_PC_DEPS}")
  set(ADVGRAD_PC_LIBS_PRIVATE "")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/advgrad.pc.in ${PROJECT_BINARY_DIR}/cmake/advgrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/advgrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
