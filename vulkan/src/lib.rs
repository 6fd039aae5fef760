//! memkit over Vulkan through `ash`: core's device traits on real device memory and queues
//! (arrives with the Vulkan issue).
