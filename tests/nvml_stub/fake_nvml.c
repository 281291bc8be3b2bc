/*
 * A stand-in libnvidia-ml.so.1 for machines without an NVIDIA GPU.
 *
 * The real nvidia-ml-py loads it (dlopen "libnvidia-ml.so.1") and calls it through ctypes, so
 * tests exercise the real bindings, struct layouts and the two-call size protocol, not a mock.
 * What the node looks like comes from a text file named by VRAMTOP_FAKE_NVML_SCENARIO (format in
 * README.md). The file is stat()ed on every call and re-read when it changes, so a test can
 * rewrite it (atomically) while the program under test keeps reading.
 *
 * Build variants drop symbols the way older drivers lack them:
 *   -DNO_MEMORY_INFO_V2   no nvmlDeviceGetMemoryInfo_v2 (drivers before R510)
 *   -DNO_PROCESSES_V3     no nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3 (before R510)
 *   -DNO_MIG              none of the MIG calls (drivers before R450)
 *
 * Topology: "topology I J LEVEL" lines answer nvmlDeviceGetTopologyCommonAncestor for that pair.
 * MIG: a GPU with "mig_mode 1" and "mig_device" lines is split into MIG devices. As on a real
 * driver, a MIG device handle (nvmlDeviceGetMigDeviceHandleByIndex) answers its own name, UUID,
 * memory and processes; the parent's process list holds every slice's processes with their GPU and
 * compute instance IDs; utilization is NOT_SUPPORTED on a MIG-enabled parent and on MIG handles.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef int nvmlReturn_t;
typedef unsigned long long ull;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

static const struct { const char *name; int code; const char *text; } ERRORS[] = {
    {"SUCCESS", NVML_SUCCESS, "Success"},
    {"UNINITIALIZED", NVML_ERROR_UNINITIALIZED, "Uninitialized"},
    {"INVALID_ARGUMENT", NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument"},
    {"NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED, "Not Supported"},
    {"NO_PERMISSION", NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"},
    {"NOT_FOUND", NVML_ERROR_NOT_FOUND, "Not Found"},
    {"INSUFFICIENT_SIZE", NVML_ERROR_INSUFFICIENT_SIZE, "Insufficient Size"},
    {"DRIVER_NOT_LOADED", NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"},
    {"TIMEOUT", NVML_ERROR_TIMEOUT, "Timeout"},
    {"LIBRARY_NOT_FOUND", NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"},
    {"FUNCTION_NOT_FOUND", NVML_ERROR_FUNCTION_NOT_FOUND, "Function Not Found"},
    {"GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST, "GPU is lost"},
    {"RESET_REQUIRED", NVML_ERROR_RESET_REQUIRED, "GPU requires restart"},
    {"ARGUMENT_VERSION_MISMATCH", NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "Argument version mismatch"},
    {"UNKNOWN", NVML_ERROR_UNKNOWN, "Unknown Error"},
};
#define N_ERRORS (sizeof ERRORS / sizeof ERRORS[0])

/* The structs exactly as nvml.h (and pynvml's ctypes mirrors) lay them out. */
typedef struct { ull total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; ull total, reserved, free, used; } nvmlMemory_v2_t;
#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2 << 24)))
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
    unsigned int pid;
    ull usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ULL)

#define MAX_GPUS 64
#define MAX_PROCS 4096
#define MAX_FAULTS 512
#define MAX_MIG 7 /* an A100 / H100 holds at most 7 MIG devices */
#define TEXT 96
#define NO_INSTANCE 0xFFFFFFFFu /* gpuInstanceId / computeInstanceId of a process outside MIG */

struct mig {
    char profile[TEXT], uuid[TEXT];
    unsigned int gpu_instance, compute_instance;
    ull total, reserved, used, free;
};
struct gpu {
    char name[TEXT], uuid[TEXT];
    ull total, reserved, used, free;
    unsigned int util_gpu, util_mem, temperature, power_mw, power_limit_mw;
    int mig_capable, mig_current, mig_pending;
    int mig_count;
    struct mig migs[MAX_MIG];
};
struct proc { int gpu; int mig; /* -1: the whole GPU */ unsigned int pid; ull used; int graphics; };
enum { ON_GPU_ONLY = -1, ON_ANY = -2, ON_GPU_AND_MIG = -3 };
struct fault { char function[TEXT]; int gpu; /* -1: any */ int mig; /* a MIG device, or ON_* */ int code; };

struct scenario {
    char driver[TEXT], nvml[TEXT];
    int cuda;
    int gpu_count;
    struct gpu gpus[MAX_GPUS];
    int proc_count;
    struct proc procs[MAX_PROCS];
    int fault_count;
    struct fault faults[MAX_FAULTS];
    unsigned char topology[MAX_GPUS][MAX_GPUS]; /* NVML topology level + 1; 0: not reported */
};

/* A device handle points into these arrays, so it stays valid across scenario reloads. */
typedef struct { int index; int mig; /* -1: the GPU itself */ } device_t;
typedef device_t *nvmlDevice_t;
static device_t DEVICES[MAX_GPUS];
static device_t MIG_DEVICES[MAX_GPUS][MAX_MIG];

static pthread_mutex_t LOCK = PTHREAD_MUTEX_INITIALIZER;
static struct scenario S, NEXT;
static int LOADED;      /* S holds a well-formed scenario */
static int BROKEN;      /* the file exists but does not parse: every call fails, loudly */
static char LOADED_PATH[4096];
static struct stat LOADED_STAT;
static int INIT_COUNT;

static int error_code(const char *name) {
    if (strncmp(name, "NVML_ERROR_", 11) == 0) name += 11;
    for (size_t i = 0; i < N_ERRORS; i++)
        if (strcmp(ERRORS[i].name, name) == 0) return ERRORS[i].code;
    char *end;
    long v = strtol(name, &end, 10);
    return (*name && !*end) ? (int)v : -1;
}

static void copy_text(char *dst, const char *src) {
    snprintf(dst, TEXT, "%s", src);
    dst[strcspn(dst, "\r\n")] = 0;
}

/* "*" (any handle), "N" (GPU N and its MIG devices), "N:gpu" (GPU N's own handle only) or "N:M"
 * (MIG device M of GPU N). Returns the GPU (-1 for "*"); *mig gets M or one of ON_*. */
static int parse_gpu_ref(const char *s, int *mig) {
    if (strcmp(s, "*") == 0) {
        *mig = ON_ANY;
        return -1;
    }
    const char *colon = strchr(s, ':');
    *mig = !colon ? ON_GPU_AND_MIG : strcmp(colon + 1, "gpu") == 0 ? ON_GPU_ONLY : atoi(colon + 1);
    return atoi(s);
}

/* Parses the file into NEXT; returns 0, or the line number of the first bad line. */
static int parse(FILE *f) {
    char line[1024], key[64], a[TEXT], b[TEXT], c[TEXT], d[TEXT];
    int lineno = 0, current = -1;
    memset(&NEXT, 0, sizeof NEXT);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == 0) continue;
        if (sscanf(p, "%63s", key) != 1) continue;
        char *rest = p + strlen(key);
        rest += strspn(rest, " \t");
        int n = sscanf(rest, "%95s %95s %95s %95s", a, b, c, d);
        if (strcmp(key, "driver") == 0 && n >= 1) copy_text(NEXT.driver, rest);
        else if (strcmp(key, "nvml") == 0 && n >= 1) copy_text(NEXT.nvml, rest);
        else if (strcmp(key, "cuda") == 0 && n == 1) NEXT.cuda = atoi(a);
        else if (strcmp(key, "gpu") == 0 && n == 1) {
            current = atoi(a);
            if (current != NEXT.gpu_count || current >= MAX_GPUS) return lineno; /* 0, 1, 2... in order */
            NEXT.gpu_count++;
        } else if (current < 0 && (strcmp(key, "name") == 0 || strcmp(key, "uuid") == 0 ||
                                   strcmp(key, "memory") == 0 || strcmp(key, "utilization") == 0 ||
                                   strcmp(key, "temperature") == 0 || strcmp(key, "power") == 0 ||
                                   strcmp(key, "power_limit") == 0 || strcmp(key, "mig_mode") == 0 ||
                                   strcmp(key, "mig_device") == 0 || strcmp(key, "mig_memory") == 0)) {
            return lineno; /* a GPU field before any "gpu N" line */
        } else if (strcmp(key, "name") == 0 && n >= 1) copy_text(NEXT.gpus[current].name, rest);
        else if (strcmp(key, "uuid") == 0 && n == 1) copy_text(NEXT.gpus[current].uuid, a);
        else if (strcmp(key, "memory") == 0 && n == 4) {
            struct gpu *g = &NEXT.gpus[current];
            g->total = strtoull(a, 0, 10);
            g->reserved = strtoull(b, 0, 10);
            g->used = strtoull(c, 0, 10);
            g->free = strtoull(d, 0, 10);
        } else if (strcmp(key, "utilization") == 0 && n == 2) {
            NEXT.gpus[current].util_gpu = (unsigned)atoi(a);
            NEXT.gpus[current].util_mem = (unsigned)atoi(b);
        } else if (strcmp(key, "temperature") == 0 && n == 1) NEXT.gpus[current].temperature = (unsigned)atoi(a);
        else if (strcmp(key, "power") == 0 && n == 1) NEXT.gpus[current].power_mw = (unsigned)atoi(a);
        else if (strcmp(key, "power_limit") == 0 && n == 1) NEXT.gpus[current].power_limit_mw = (unsigned)atoi(a);
        else if (strcmp(key, "mig_mode") == 0 && n == 2) {
            struct gpu *g = &NEXT.gpus[current];
            g->mig_capable = 1;
            g->mig_current = atoi(a);
            g->mig_pending = atoi(b);
        } else if (strcmp(key, "mig_device") == 0 && n == 4) {
            struct gpu *g = &NEXT.gpus[current];
            if (!g->mig_capable || g->mig_count >= MAX_MIG) return lineno;
            struct mig *m = &g->migs[g->mig_count++];
            m->gpu_instance = (unsigned)atoi(a);
            m->compute_instance = (unsigned)atoi(b);
            copy_text(m->profile, c);
            copy_text(m->uuid, d);
        } else if (strcmp(key, "mig_memory") == 0 && n == 4) {
            struct gpu *g = &NEXT.gpus[current];
            if (g->mig_count == 0) return lineno;
            struct mig *m = &g->migs[g->mig_count - 1];
            m->total = strtoull(a, 0, 10);
            m->reserved = strtoull(b, 0, 10);
            m->used = strtoull(c, 0, 10);
            m->free = strtoull(d, 0, 10);
        }
        else if (strcmp(key, "process") == 0 && (n == 3 || n == 4)) {
            if (NEXT.proc_count >= MAX_PROCS) return lineno;
            struct proc *pr = &NEXT.procs[NEXT.proc_count++];
            pr->gpu = parse_gpu_ref(a, &pr->mig);
            if (pr->mig == ON_GPU_AND_MIG) pr->mig = -1; /* "N": on the whole GPU, not on a slice */
            pr->pid = (unsigned)strtoul(b, 0, 10);
            pr->used = strcmp(c, "na") == 0 ? NVML_VALUE_NOT_AVAILABLE_ULL : strtoull(c, 0, 10);
            if (n == 4 && strcmp(d, "graphics") != 0 && strcmp(d, "compute") != 0) return lineno;
            pr->graphics = n == 4 && strcmp(d, "graphics") == 0;
        } else if (strcmp(key, "topology") == 0 && n == 3) { /* "topology I J LEVEL", both ways */
            int i = atoi(a), j = atoi(b), level = atoi(c);
            if (i < 0 || j < 0 || i >= MAX_GPUS || j >= MAX_GPUS || level < 0 || level > 100) return lineno;
            NEXT.topology[i][j] = NEXT.topology[j][i] = (unsigned char)(level + 1);
        } else if (strcmp(key, "fault") == 0 && n == 3) {
            if (NEXT.fault_count >= MAX_FAULTS) return lineno;
            struct fault *ft = &NEXT.faults[NEXT.fault_count++];
            copy_text(ft->function, a);
            ft->gpu = parse_gpu_ref(b, &ft->mig);
            ft->code = error_code(c);
            if (ft->code < 0) return lineno;
        } else {
            return lineno;
        }
    }
    for (int i = 0; i < NEXT.proc_count; i++) {
        const struct proc *pr = &NEXT.procs[i];
        if (pr->gpu < 0 || pr->gpu >= NEXT.gpu_count || pr->mig < -1 || pr->mig >= NEXT.gpus[pr->gpu].mig_count)
            return lineno;
    }
    return 0;
}

/* Brings S up to date with the file; returns NVML_SUCCESS, or the code every call gets. */
static nvmlReturn_t sync_scenario(void) {
    const char *path = getenv("VRAMTOP_FAKE_NVML_SCENARIO");
    struct stat st;
    if (!path || !*path || stat(path, &st) != 0) {
        /* No scenario: a machine whose driver is absent. A scenario already read stays. */
        return LOADED && !BROKEN ? NVML_SUCCESS : NVML_ERROR_DRIVER_NOT_LOADED;
    }
    if (LOADED && strcmp(path, LOADED_PATH) == 0 && st.st_ino == LOADED_STAT.st_ino &&
        st.st_dev == LOADED_STAT.st_dev && st.st_size == LOADED_STAT.st_size &&
        st.st_mtim.tv_sec == LOADED_STAT.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == LOADED_STAT.st_mtim.tv_nsec)
        return BROKEN ? NVML_ERROR_UNKNOWN : NVML_SUCCESS;
    FILE *f = fopen(path, "r");
    if (!f) return LOADED && !BROKEN ? NVML_SUCCESS : NVML_ERROR_DRIVER_NOT_LOADED;
    int bad = parse(f);
    fclose(f);
    snprintf(LOADED_PATH, sizeof LOADED_PATH, "%s", path);
    LOADED_STAT = st;
    LOADED = 1;
    BROKEN = bad != 0;
    if (BROKEN) {
        fprintf(stderr, "fake NVML: %s line %d is not understood; every call fails\n", path, bad);
        return NVML_ERROR_UNKNOWN;
    }
    memcpy(&S, &NEXT, sizeof S);
    for (int i = 0; i < MAX_GPUS; i++) {
        DEVICES[i].index = i;
        DEVICES[i].mig = -1;
        for (int m = 0; m < MAX_MIG; m++) MIG_DEVICES[i][m] = (device_t){i, m};
    }
    return NVML_SUCCESS;
}

/* "nvmlDeviceGetMemoryInfo" names both the v1 and the _v2 symbol; "..._v2" only the latter.
 * ``mig`` is the MIG device called (-1: the GPU's own handle). */
static int fault_matches(const struct fault *ft, const char *symbol, const char *base, int gpu, int mig) {
    if (ft->gpu != -1 && ft->gpu != gpu) return 0;
    if (ft->mig >= 0 && ft->mig != mig) return 0;
    if (ft->mig == ON_GPU_ONLY && mig >= 0) return 0;
    return strcmp(ft->function, "*") == 0 || strcmp(ft->function, symbol) == 0 ||
           strcmp(ft->function, base) == 0;
}

/* A handle this library gave out: a GPU's, or a MIG device's that still exists. */
static int valid_handle(nvmlDevice_t device) {
    const device_t *first_mig = &MIG_DEVICES[0][0];
    int is_gpu = device >= DEVICES && device < DEVICES + MAX_GPUS;
    int is_mig = device >= first_mig && device < first_mig + MAX_GPUS * MAX_MIG;
    if (!is_gpu && !is_mig) return 0;
    if (device->index >= S.gpu_count) return 0;
    return device->mig < 0 || (S.gpus[device->index].mig_current && device->mig < S.gpus[device->index].mig_count);
}

/* Every entry point starts here (and holds LOCK until end()). */
static nvmlReturn_t begin(const char *symbol, const char *base, int needs_init, nvmlDevice_t device,
                          int *index) {
    pthread_mutex_lock(&LOCK);
    nvmlReturn_t rc = sync_scenario();
    if (rc != NVML_SUCCESS) return rc;
    if (needs_init && INIT_COUNT == 0) return NVML_ERROR_UNINITIALIZED;
    int gpu = -1, mig = -1;
    if (index) {
        if (!valid_handle(device)) return NVML_ERROR_INVALID_ARGUMENT;
        gpu = device->index;
        mig = device->mig;
        *index = gpu;
    }
    for (int i = 0; i < S.fault_count; i++)
        if (fault_matches(&S.faults[i], symbol, base, gpu, mig)) return S.faults[i].code;
    return NVML_SUCCESS;
}

static nvmlReturn_t end(nvmlReturn_t rc) {
    pthread_mutex_unlock(&LOCK);
    return rc;
}

static nvmlReturn_t copy_string(char *dst, unsigned int length, const char *src) {
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

/* ---- Initialisation ---- */

static nvmlReturn_t init(const char *symbol) {
    nvmlReturn_t rc = begin(symbol, "nvmlInit", 0, NULL, NULL);
    if (rc == NVML_SUCCESS) INIT_COUNT++;
    return end(rc);
}
nvmlReturn_t nvmlInit(void) { return init("nvmlInit"); }
nvmlReturn_t nvmlInit_v2(void) { return init("nvmlInit_v2"); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return init("nvmlInitWithFlags"); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&LOCK);
    if (INIT_COUNT == 0) return end(NVML_ERROR_UNINITIALIZED);
    INIT_COUNT--;
    return end(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t result) {
    for (size_t i = 0; i < N_ERRORS; i++)
        if (ERRORS[i].code == result) return ERRORS[i].text;
    return "Unknown Error";
}

/* Lets a test check that it talks to this stand-in, never to a real driver. */
int vramtopFakeNvml(void) { return 1; }

/* How many nvmlInit calls are not yet matched by nvmlShutdown (tests clean up leftovers). */
int vramtopFakeNvmlInitCount(void) {
    pthread_mutex_lock(&LOCK);
    int n = INIT_COUNT;
    pthread_mutex_unlock(&LOCK);
    return n;
}

/* ---- System ---- */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    nvmlReturn_t rc = begin("nvmlSystemGetDriverVersion", "nvmlSystemGetDriverVersion", 1, NULL, NULL);
    return end(rc ? rc : copy_string(version, length, S.driver));
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    nvmlReturn_t rc = begin("nvmlSystemGetNVMLVersion", "nvmlSystemGetNVMLVersion", 1, NULL, NULL);
    return end(rc ? rc : copy_string(version, length, S.nvml));
}

static nvmlReturn_t cuda_version(const char *symbol, int *version) {
    nvmlReturn_t rc = begin(symbol, "nvmlSystemGetCudaDriverVersion", 0, NULL, NULL);
    if (rc == NVML_SUCCESS) {
        if (!version) rc = NVML_ERROR_INVALID_ARGUMENT;
        else *version = S.cuda;
    }
    return end(rc);
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion", v); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion_v2", v); }

/* ---- Devices ---- */

static nvmlReturn_t device_count(const char *symbol, unsigned int *count) {
    nvmlReturn_t rc = begin(symbol, "nvmlDeviceGetCount", 1, NULL, NULL);
    if (rc == NVML_SUCCESS) {
        if (!count) rc = NVML_ERROR_INVALID_ARGUMENT;
        else *count = (unsigned int)S.gpu_count;
    }
    return end(rc);
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *c) { return device_count("nvmlDeviceGetCount", c); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) { return device_count("nvmlDeviceGetCount_v2", c); }

static nvmlReturn_t handle_by_index(const char *symbol, unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&LOCK);
    nvmlReturn_t rc = sync_scenario();
    if (rc == NVML_SUCCESS && INIT_COUNT == 0) rc = NVML_ERROR_UNINITIALIZED;
    if (rc == NVML_SUCCESS && (!device || index >= (unsigned int)S.gpu_count)) rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS) {
        for (int i = 0; i < S.fault_count; i++)
            if (fault_matches(&S.faults[i], symbol, "nvmlDeviceGetHandleByIndex", (int)index, -1)) {
                rc = S.faults[i].code;
                break;
            }
    }
    if (rc == NVML_SUCCESS) *device = &DEVICES[index];
    return end(rc);
}
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex", i, d); }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex_v2", i, d); }

/* Opens a call on a handle: gpu is its GPU, g that GPU, m its MIG device (NULL on a GPU handle). */
#define DEVICE_CALL(symbol, base, device) \
    int gpu = -1;                         \
    nvmlReturn_t rc = begin(symbol, base, 1, device, &gpu); \
    if (rc != NVML_SUCCESS) return end(rc); \
    struct gpu *g = &S.gpus[gpu]; \
    struct mig *m = device->mig < 0 ? NULL : &g->migs[device->mig]; \
    (void)m;

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    DEVICE_CALL("nvmlDeviceGetIndex", "nvmlDeviceGetIndex", device)
    (void)g;
    if (!index) return end(NVML_ERROR_INVALID_ARGUMENT);
    *index = (unsigned int)gpu;
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    DEVICE_CALL("nvmlDeviceGetName", "nvmlDeviceGetName", device)
    if (!m) return end(copy_string(name, length, g->name));
    char full[2 * TEXT + 8]; /* "NVIDIA A100-SXM4-80GB MIG 3g.40gb", as nvidia-smi -L prints it */
    snprintf(full, sizeof full, "%s MIG %s", g->name, m->profile);
    return end(copy_string(name, length, full));
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    DEVICE_CALL("nvmlDeviceGetUUID", "nvmlDeviceGetUUID", device)
    return end(copy_string(uuid, length, m ? m->uuid : g->uuid));
}

/* v1 folds the reserved memory into "used", as drivers since R510 do. */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    DEVICE_CALL("nvmlDeviceGetMemoryInfo", "nvmlDeviceGetMemoryInfo", device)
    if (!memory) return end(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = m ? m->total : g->total;
    memory->free = m ? m->free : g->free;
    memory->used = m ? m->used + m->reserved : g->used + g->reserved;
    return end(NVML_SUCCESS);
}

#ifndef NO_MEMORY_INFO_V2
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    DEVICE_CALL("nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetMemoryInfo", device)
    if (!memory) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (memory->version != NVML_MEMORY_V2_VERSION) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    memory->total = m ? m->total : g->total;
    memory->reserved = m ? m->reserved : g->reserved;
    memory->free = m ? m->free : g->free;
    memory->used = m ? m->used : g->used;
    return end(NVML_SUCCESS);
}
#endif

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    DEVICE_CALL("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetUtilizationRates", device)
    if (!utilization) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (m || g->mig_current) return end(NVML_ERROR_NOT_SUPPORTED); /* MIG: no per-GPU utilization */
    utilization->gpu = g->util_gpu;
    utilization->memory = g->util_mem;
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    DEVICE_CALL("nvmlDeviceGetTemperature", "nvmlDeviceGetTemperature", device)
    if (!temp || sensor != 0) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (m) return end(NVML_ERROR_NOT_SUPPORTED);
    *temp = g->temperature;
    return end(NVML_SUCCESS);
}

static nvmlReturn_t unsigned_field(const char *symbol, nvmlDevice_t device, unsigned int *out, int which) {
    DEVICE_CALL(symbol, symbol, device)
    if (!out) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (m) return end(NVML_ERROR_NOT_SUPPORTED);
    *out = which == 0 ? g->power_mw : g->power_limit_mw;
    return end(NVML_SUCCESS);
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetPowerUsage", d, mw, 0); }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetEnforcedPowerLimit", d, mw, 1); }
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetPowerManagementLimit", d, mw, 1); }

/* The size protocol: too small a buffer (or none) gets INSUFFICIENT_SIZE and the count needed.
 * A GPU lists every process on it (on MIG, with the slice's instance IDs); a MIG device its own. */
static nvmlReturn_t processes(const char *symbol, const char *base, int graphics, nvmlDevice_t device,
                              unsigned int *count, nvmlProcessInfo_t *infos) {
    DEVICE_CALL(symbol, base, device)
    if (!count) return end(NVML_ERROR_INVALID_ARGUMENT);
    int mig = device->mig;
#define LISTED(p) ((p)->gpu == gpu && (p)->graphics == graphics && (mig < 0 || (p)->mig == mig))
    unsigned int n = 0;
    for (int i = 0; i < S.proc_count; i++)
        if (LISTED(&S.procs[i])) n++;
    if (n > *count) {
        *count = n;
        return end(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (n > 0 && !infos) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int k = 0;
    for (int i = 0; i < S.proc_count; i++) {
        const struct proc *p = &S.procs[i];
        if (!LISTED(p)) continue;
        infos[k].pid = p->pid;
        infos[k].usedGpuMemory = p->used;
        infos[k].gpuInstanceId = p->mig < 0 ? NO_INSTANCE : g->migs[p->mig].gpu_instance;
        infos[k].computeInstanceId = p->mig < 0 ? NO_INSTANCE : g->migs[p->mig].compute_instance;
        k++;
    }
#undef LISTED
    *count = n;
    return end(NVML_SUCCESS);
}

#define PROCESS_SYMBOL(name, base, graphics) \
    nvmlReturn_t name(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos) { \
        return processes(#name, base, graphics, d, count, infos); \
    }
PROCESS_SYMBOL(nvmlDeviceGetComputeRunningProcesses_v2, "nvmlDeviceGetComputeRunningProcesses", 0)
PROCESS_SYMBOL(nvmlDeviceGetGraphicsRunningProcesses_v2, "nvmlDeviceGetGraphicsRunningProcesses", 1)
#ifndef NO_PROCESSES_V3
PROCESS_SYMBOL(nvmlDeviceGetComputeRunningProcesses_v3, "nvmlDeviceGetComputeRunningProcesses", 0)
PROCESS_SYMBOL(nvmlDeviceGetGraphicsRunningProcesses_v3, "nvmlDeviceGetGraphicsRunningProcesses", 1)
#endif

/* ---- Topology ---- */

/* The closest common ancestor of two GPUs (NVML_TOPOLOGY_INTERNAL 0, SINGLE 10, MULTIPLE 20,
 * HOSTBRIDGE 30, NODE 40, SYSTEM 50); NOT_SUPPORTED for a pair the scenario does not describe,
 * as in a VM without the PCI topology. */
nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, int *level) {
    int i;
    nvmlReturn_t rc = begin("nvmlDeviceGetTopologyCommonAncestor", "nvmlDeviceGetTopologyCommonAncestor", 1, a, &i);
    if (rc != NVML_SUCCESS) return end(rc);
    if (!level || !valid_handle(b) || a->mig >= 0 || b->mig >= 0) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (i == b->index) { *level = 0; return end(NVML_SUCCESS); }
    if (!S.topology[i][b->index]) return end(NVML_ERROR_NOT_SUPPORTED);
    *level = S.topology[i][b->index] - 1;
    return end(NVML_SUCCESS);
}

/* ---- MIG ---- */
#ifndef NO_MIG

/* A GPU that cannot do MIG (an A10, a consumer card) answers NOT_SUPPORTED. */
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    DEVICE_CALL("nvmlDeviceGetMigMode", "nvmlDeviceGetMigMode", device)
    if (!current || !pending || m) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->mig_capable) return end(NVML_ERROR_NOT_SUPPORTED);
    *current = (unsigned int)g->mig_current;
    *pending = (unsigned int)g->mig_pending;
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    DEVICE_CALL("nvmlDeviceGetMaxMigDeviceCount", "nvmlDeviceGetMaxMigDeviceCount", device)
    if (!count || m) return end(NVML_ERROR_INVALID_ARGUMENT);
    *count = g->mig_capable ? MAX_MIG : 0;
    return end(NVML_SUCCESS);
}

/* NOT_FOUND for an index below the maximum that holds no MIG device, as the driver answers. */
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig) {
    DEVICE_CALL("nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetMigDeviceHandleByIndex", device)
    if (!mig || m) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->mig_capable) return end(NVML_ERROR_NOT_SUPPORTED);
    if (index >= MAX_MIG) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->mig_current || index >= (unsigned int)g->mig_count) return end(NVML_ERROR_NOT_FOUND);
    *mig = &MIG_DEVICES[gpu][index];
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig) {
    DEVICE_CALL("nvmlDeviceIsMigDeviceHandle", "nvmlDeviceIsMigDeviceHandle", device)
    if (!is_mig) return end(NVML_ERROR_INVALID_ARGUMENT);
    *is_mig = m != NULL;
    return end(NVML_SUCCESS);
}

static nvmlReturn_t instance_id(const char *symbol, nvmlDevice_t device, unsigned int *id, int compute) {
    DEVICE_CALL(symbol, symbol, device)
    if (!id) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!m) return end(g->mig_capable ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_NOT_SUPPORTED);
    *id = compute ? m->compute_instance : m->gpu_instance;
    return end(NVML_SUCCESS);
}
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id) { return instance_id("nvmlDeviceGetGpuInstanceId", d, id, 0); }
nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id) { return instance_id("nvmlDeviceGetComputeInstanceId", d, id, 1); }

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device) {
    DEVICE_CALL("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig)
    if (!device || !m) return end(NVML_ERROR_INVALID_ARGUMENT);
    *device = &DEVICES[gpu];
    return end(NVML_SUCCESS);
}
#endif
