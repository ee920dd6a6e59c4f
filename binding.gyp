# olmo-ts builds its addon with CMake (CMakeLists.txt, through cmake-js: `npm run build:native`).
# This file exists because tools look for it; it deliberately builds nothing, and package.json sets
# "gypfile": false so npm never runs node-gyp on it. Keep one build: edit CMakeLists.txt instead.
{
  "targets": []
}
