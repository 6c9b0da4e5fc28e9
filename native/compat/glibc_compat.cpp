// Lets the prebuilt binary, built with a glibc 2.36 toolchain, load on glibc 2.28 and later
// (linked only in the portable build: sources.json "portable").
//
// With libstdc++ and libgcc linked statically, the binary references four glibc symbols newer
// than 2.28: pthread_once and __pthread_key_create (given new GLIBC_2.34 default versions when
// libpthread moved into libc), __libc_single_threaded (2.32) and _dl_find_object (2.35, used
// by the static unwinder). The link redirects each of them here (-Wl,--wrap=SYMBOL makes every
// reference to SYMBOL a reference to __wrap_SYMBOL), and this file binds the first two to their
// original versions with .symver and replaces the other two. An older sysroot would not do:
// Debian 10's glibc 2.28 is gone from Debian's mirrors, and gcc 12's static libstdc++ and
// libgcc reference these symbols whatever glibc they are linked against.
// distribution.test.ts checks the result.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <cstdint>

#if !defined(__GLIBC__) || !(defined(__x86_64__) || defined(__aarch64__))
#error "The portable build targets glibc on x86-64 and aarch64 only."
#endif

// The oldest version of each symbol: the architecture's first glibc release.
#if defined(__x86_64__)
#define BN_GLIBC_BASE "GLIBC_2.2.5"
#else
#define BN_GLIBC_BASE "GLIBC_2.17"
#endif

// Hidden: the replacements serve this binary only, and nothing outside may bind to them.
#define BN_HIDDEN __attribute__((visibility("hidden")))

extern "C" {

int bn_pthread_once_base(pthread_once_t* once, void (*init)());
int bn_pthread_key_create_base(pthread_key_t* key, void (*destructor)(void*));
__asm__(".symver bn_pthread_once_base, pthread_once@" BN_GLIBC_BASE);
__asm__(".symver bn_pthread_key_create_base, __pthread_key_create@" BN_GLIBC_BASE);

BN_HIDDEN int __wrap_pthread_once(pthread_once_t* once, void (*init)()) {
  return bn_pthread_once_base(once, init);
}

BN_HIDDEN int __wrap___pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  return bn_pthread_key_create_base(key, destructor);
}

// libstdc++ skips atomic reference counting while this is nonzero. Zero ("threads may exist")
// is always correct, and is what a libstdc++ built before glibc 2.32 assumes.
BN_HIDDEN char __wrap___libc_single_threaded = 0;

namespace {

struct ObjectSearch {
  uintptr_t pc;
  dl_find_object* result;
};

// dl_iterate_phdr callback: fills in the object whose loaded segments contain the pc.
int find_object_of_pc(dl_phdr_info* info, size_t, void* data) {
  ObjectSearch* search = static_cast<ObjectSearch*>(data);
  uintptr_t start = UINTPTR_MAX, end = 0;
  void* eh_frame = nullptr;
  bool contains_pc = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const uintptr_t at = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type == PT_GNU_EH_FRAME) eh_frame = reinterpret_cast<void*>(at);
    if (segment.p_type != PT_LOAD) continue;
    if (at < start) start = at;
    if (at + segment.p_memsz > end) end = at + segment.p_memsz;
    contains_pc |= search->pc >= at && search->pc < at + segment.p_memsz;
  }
  if (!contains_pc) return 0;
  *search->result = dl_find_object{};
  search->result->dlfo_map_start = reinterpret_cast<void*>(start);
  search->result->dlfo_map_end = reinterpret_cast<void*>(end);
  search->result->dlfo_eh_frame = eh_frame;  // dlfo_link_map stays null: the unwinder ignores it.
  return 1;
}

}  // namespace

// glibc's _dl_find_object contract (0 and *result filled, or -1), built on dl_iterate_phdr,
// which every glibc has. libgcc's unwinder calls it to find the frame tables when an
// exception is thrown, and has no other way to find them once it is linked in.
BN_HIDDEN int __wrap__dl_find_object(void* pc, dl_find_object* result) {
  ObjectSearch search{reinterpret_cast<uintptr_t>(pc), result};
  return dl_iterate_phdr(find_object_of_pc, &search) ? 0 : -1;
}

}  // extern "C"
