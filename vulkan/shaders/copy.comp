// Copies one storage buffer range into another, 16 bytes per load and store, in a grid-stride
// loop so any number of workgroups covers any size. Both bindings are ranges of equal length (a
// multiple of 16 bytes); the copy stops at the shorter one.
//
// Regenerate the committed SPIR-V (from the repository root) after editing:
//   glslangValidator -V --target-env vulkan1.1 vulkan/shaders/copy.comp -o vulkan/shaders/copy.comp.spv
#version 450

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer Source {
    uvec4 source[];
};

layout(std430, set = 0, binding = 1) writeonly buffer Destination {
    uvec4 destination[];
};

void main() {
    uint count = min(uint(source.length()), uint(destination.length()));
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < count; i += stride) {
        destination[i] = source[i];
    }
}
