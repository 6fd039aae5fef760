// Gathers 256-byte blocks through their device addresses: workgroup `b` copies the block that
// pointer `b` names into bytes [256 b, 256 b + 256) of the destination. The engine test uses it
// to read transient slices on the GPU the way a bindless engine's shaders do, by address.
//
// Regenerate the committed SPIR-V (from the repository root) after editing:
//   glslangValidator -V --target-env vulkan1.2 vulkan/shaders/gather.comp -o vulkan/shaders/gather.comp.spv
#version 450
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require

layout(local_size_x = 16) in;

layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer Block {
    uvec4 words[16];
};

// The addresses as two 32-bit halves each (low first): no 64-bit integers needed.
layout(std430, set = 0, binding = 0) readonly buffer Pointers {
    uvec2 pointers[];
};

layout(std430, set = 0, binding = 1) writeonly buffer Destination {
    uvec4 destination[];
};

void main() {
    uint block = gl_WorkGroupID.x;
    uint word = gl_LocalInvocationID.x;
    destination[block * 16 + word] = Block(pointers[block]).words[word];
}
