#!/usr/bin/env bash
# From an empty subscription to a first automated release (docs/azure.md explains each step).
#
#   infra/deploy.sh -g RESOURCE_GROUP -l LOCATION [options]
#
# Steps: tools and providers → infrastructure (infra/main.bicep) → training environment → AKS with the Azure ML
# extension, attached as Kubernetes compute → publish the app → Event Grid subscriptions (second deployment of
# main.bicep) → first data drop. Every step can be run again: what exists is kept.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: infra/deploy.sh -g RESOURCE_GROUP -l LOCATION [options]

  -g, --resource-group NAME   resource group to create or reuse (required)
  -l, --location REGION       Azure region, one that offers Flex Consumption (required)
  -s, --subscription ID       subscription to use (default: the Azure CLI's current one)
  -p, --prefix PREFIX         3-11 lowercase letters and digits starting with a letter (default: mlops)
      --model-name NAME       registry name of the model (default: diabetes-ridge)
      --aks-name NAME         AKS cluster for production (default: <prefix>-aks)
      --aks-compute NAME      its name as Kubernetes compute in the workspace (default: aks-prod)
      --aks-nodes N           node count (default: 3; below 3 the inference router runs without HA)
      --aks-vm-size SIZE      node size, at least 4 vCPU and 14 GB (default: Standard_D4s_v3)
      --tls-cname NAME        DNS name of the HTTPS scoring endpoint (TLS is the default: give all three)
      --tls-cert FILE         PEM certificate for that name
      --tls-key FILE          PEM private key of that certificate (no pass phrase)
      --insecure-test-cluster serve production scoring over plain HTTP (allowInsecureConnections=True):
                              for a test cluster only, see docs/azure.md
      --skip-aks              leave out the production cluster (QA still works; releases stop at production)
      --package ZIP           publish this package (as built by the pipelines) instead of building one here
      --data FILE             first data drop (default: the sample diabetes data, python -m ml.sample)
      --no-drop               stop after the Event Grid subscriptions
  -h, --help                  this text
EOF
}

die() { echo "deploy.sh: $*" >&2; exit 2; }
step() { printf '\n==> %s\n' "$*"; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
POLL_SECONDS="${POLL_SECONDS:-10}"
RG="" LOCATION="" SUBSCRIPTION="" PREFIX="mlops" MODEL_NAME="diabetes-ridge"
AKS_NAME="" AKS_COMPUTE="aks-prod" AKS_NODES=3 AKS_VM_SIZE="Standard_D4s_v3"
TLS_CNAME="" TLS_CERT="" TLS_KEY="" INSECURE=false SKIP_AKS=false PACKAGE="" DATA="" DROP=true

while (($#)); do
  case "$1" in
    -g|--resource-group) RG="${2:?}"; shift 2 ;;
    -l|--location) LOCATION="${2:?}"; shift 2 ;;
    -s|--subscription) SUBSCRIPTION="${2:?}"; shift 2 ;;
    -p|--prefix) PREFIX="${2:?}"; shift 2 ;;
    --model-name) MODEL_NAME="${2:?}"; shift 2 ;;
    --aks-name) AKS_NAME="${2:?}"; shift 2 ;;
    --aks-compute) AKS_COMPUTE="${2:?}"; shift 2 ;;
    --aks-nodes) AKS_NODES="${2:?}"; shift 2 ;;
    --aks-vm-size) AKS_VM_SIZE="${2:?}"; shift 2 ;;
    --tls-cname) TLS_CNAME="${2:?}"; shift 2 ;;
    --tls-cert) TLS_CERT="${2:?}"; shift 2 ;;
    --tls-key) TLS_KEY="${2:?}"; shift 2 ;;
    --insecure-test-cluster) INSECURE=true; shift ;;
    --skip-aks) SKIP_AKS=true; shift ;;
    --package) PACKAGE="${2:?}"; shift 2 ;;
    --data) DATA="${2:?}"; shift 2 ;;
    --no-drop) DROP=false; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ -n "$RG" ]] || die "--resource-group is required"
[[ -n "$LOCATION" ]] || die "--location is required"
[[ "$PREFIX" =~ ^[a-z][a-z0-9]{2,10}$ ]] || die "--prefix must be 3-11 lowercase letters and digits starting with a letter, got '$PREFIX'"
[[ "$AKS_NODES" =~ ^[1-9][0-9]*$ ]] || die "--aks-nodes must be a positive integer, got '$AKS_NODES'"
AKS_NAME="${AKS_NAME:-$PREFIX-aks}"
if [[ "$SKIP_AKS" == false ]]; then
  if [[ "$INSECURE" == true ]]; then
    [[ -z "$TLS_CNAME$TLS_CERT$TLS_KEY" ]] || die "--insecure-test-cluster and --tls-* exclude each other"
  else
    [[ -n "$TLS_CNAME" && -n "$TLS_CERT" && -n "$TLS_KEY" ]] ||
      die "production scoring is HTTPS by default: give --tls-cname, --tls-cert and --tls-key (or --insecure-test-cluster for a test cluster)"
    [[ -r "$TLS_CERT" ]] || die "--tls-cert: cannot read $TLS_CERT"
    [[ -r "$TLS_KEY" ]] || die "--tls-key: cannot read $TLS_KEY"
  fi
fi
[[ -z "$PACKAGE" || -r "$PACKAGE" ]] || die "--package: cannot read $PACKAGE"
[[ -z "$DATA" || -r "$DATA" ]] || die "--data: cannot read $DATA"

PARAMS=(prefix="$PREFIX" location="$LOCATION" modelName="$MODEL_NAME" aksComputeName="$AKS_COMPUTE")

# Poll COMMAND until it prints something non-empty (or DEADLINE seconds pass); prints what it printed.
wait_for() {
  local what="$1" deadline=$((SECONDS + $2)) out
  shift 2
  while :; do
    out="$("$@" 2>/dev/null || true)"
    if [[ -n "$out" ]]; then
      printf '%s\n' "$out"
      return 0
    fi
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep "$POLL_SECONDS"
  done
}

output() { az deployment group show -g "$RG" -n mlops-infra --query "properties.outputs.$1.value" -o tsv; }

step "0. tools and resource providers"
az account show -o none 2>/dev/null || die "not signed in to Azure: run az login first"
[[ -z "$SUBSCRIPTION" ]] || az account set --subscription "$SUBSCRIPTION"
az extension add --upgrade --yes --name ml
az extension add --upgrade --yes --name k8s-extension
for namespace in Microsoft.Storage Microsoft.Web Microsoft.Insights Microsoft.OperationalInsights \
    Microsoft.KeyVault Microsoft.ContainerRegistry Microsoft.ManagedIdentity Microsoft.MachineLearningServices \
    Microsoft.EventGrid Microsoft.ContainerService Microsoft.KubernetesConfiguration; do
  az provider register --namespace "$namespace" --wait
done

step "1. infrastructure (infra/main.bicep)"
if [[ "$(az account show --query user.type -o tsv)" == "servicePrincipal" ]]; then
  DEPLOYER_ID="$(az ad sp show --id "$(az account show --query user.name -o tsv)" --query id -o tsv)"
  DEPLOYER_TYPE=ServicePrincipal
else
  DEPLOYER_ID="$(az ad signed-in-user show --query id -o tsv)"
  DEPLOYER_TYPE=User
fi
PARAMS+=(deployerObjectId="$DEPLOYER_ID" deployerPrincipalType="$DEPLOYER_TYPE")
az group create --name "$RG" --location "$LOCATION" -o none
az deployment group create -g "$RG" -n mlops-infra -f "$ROOT/infra/main.bicep" -p "${PARAMS[@]}" -o none
APP="$(output functionAppName)"
STORAGE="$(output storageAccountName)"
WORKSPACE="$(output workspaceName)"
ENDPOINT_IDENTITY="$(output endpointIdentityId)"
echo "function app $APP, storage $STORAGE, workspace $WORKSPACE"
echo "endpoints: QA $(output qaEndpointName), production $(output prodEndpointName)"

step "2. the training environment"
if ! az ml environment show -g "$RG" -w "$WORKSPACE" --name mlops-train --version 1 -o none 2>/dev/null; then
  az ml environment create -g "$RG" -w "$WORKSPACE" --name mlops-train --version 1 \
    --conda-file "$ROOT/infra/environment/train-conda.yml" \
    --image mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest -o none
fi

if [[ "$SKIP_AKS" == false ]]; then
  step "3. production compute: AKS $AKS_NAME with the Azure ML extension, attached as $AKS_COMPUTE"
  if ! az aks show -g "$RG" -n "$AKS_NAME" -o none 2>/dev/null; then
    az aks create -g "$RG" -n "$AKS_NAME" --node-count "$AKS_NODES" --node-vm-size "$AKS_VM_SIZE" \
      --enable-managed-identity --generate-ssh-keys -o none
  fi
  CONFIG=(enableTraining=False enableInference=True inferenceRouterServiceType=LoadBalancer)
  PROTECTED=()
  if ((AKS_NODES < 3)); then
    CONFIG+=(inferenceRouterHA=False)  # the router's three HA replicas need three nodes
  fi
  if [[ "$INSECURE" == true ]]; then
    CONFIG+=(allowInsecureConnections=True)
  else
    CONFIG+=(allowInsecureConnections=False sslCname="$TLS_CNAME")
    PROTECTED=(--config-protected sslCertPemFile="$TLS_CERT" sslKeyPemFile="$TLS_KEY")
  fi
  if ! az k8s-extension show -g "$RG" --cluster-name "$AKS_NAME" --cluster-type managedClusters --name azureml -o none 2>/dev/null; then
    az k8s-extension create -g "$RG" --cluster-name "$AKS_NAME" --cluster-type managedClusters \
      --name azureml --extension-type Microsoft.AzureML.Kubernetes --scope cluster \
      --config "${CONFIG[@]}" "${PROTECTED[@]}" -o none
  fi
  if ! az ml compute show -g "$RG" -w "$WORKSPACE" --name "$AKS_COMPUTE" -o none 2>/dev/null; then
    az ml compute attach -g "$RG" -w "$WORKSPACE" --type Kubernetes --name "$AKS_COMPUTE" \
      --resource-id "$(az aks show -g "$RG" -n "$AKS_NAME" --query id -o tsv)" \
      --identity-type UserAssigned --user-assigned-identities "$ENDPOINT_IDENTITY" -o none
  fi
  if [[ "$INSECURE" == false ]]; then
    echo "point DNS name $TLS_CNAME at the public IP of the azureml-fe service (namespace azureml) of $AKS_NAME"
  fi
fi

step "4. publish the function app (Flex Consumption, dependencies packaged here, no remote build)"
if [[ -z "$PACKAGE" ]]; then
  "$PYTHON" -c 'import platform, sys; sys.exit(0 if sys.version_info[:2] == (3, 11) and platform.system() == "Linux" and platform.machine() == "x86_64" else 1)' ||
    die "building the package needs Python 3.11 on Linux x86_64 (the app's runtime); use --package with the pipelines' artifact"
  BUILD="$(mktemp -d)"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$BUILD/site-packages" \
    -r "$ROOT/requirements.txt"
  PACKAGE="$BUILD/app.zip"
  "$PYTHON" "$ROOT/infra/package_app.py" --root "$ROOT" --dependencies "$BUILD/site-packages" --out "$PACKAGE"
  echo "package: $PACKAGE (publish it again with --package)"
fi
az functionapp deployment source config-zip -g "$RG" -n "$APP" --src "$PACKAGE" --build-remote false -o none
echo "waiting for the host to index the functions and create the webhook keys"
wait_for "function on_blob_drop" 900 \
  az functionapp function show -g "$RG" -n "$APP" --function-name on_blob_drop --query name -o tsv >/dev/null
wait_for "the blobs_extension key" 900 \
  az functionapp keys list -g "$RG" -n "$APP" --query systemKeys.blobs_extension -o tsv >/dev/null

step "5. Event Grid subscriptions (second deployment of infra/main.bicep; it reads the webhook keys itself)"
az deployment group create -g "$RG" -n mlops-infra -f "$ROOT/infra/main.bicep" \
  -p "${PARAMS[@]}" createEventSubscriptions=true -o none

if [[ "$DROP" == true ]]; then
  step "6. first data drop → retrain → ModelRegistered → release"
  if [[ -z "$DATA" ]]; then
    DATA="$(mktemp -d)/diabetes.csv"
    (cd "$ROOT" && "$PYTHON" -m ml.sample --out "$DATA")
  fi
  # a new role assignment can take minutes to reach the storage service: retry the upload until it is accepted
  wait_for "the upload of $DATA (Storage Blob Data Contributor for you on $STORAGE)" 600 \
    az storage blob upload --auth-mode login --account-name "$STORAGE" --container-name incoming \
    --name "$(basename "$DATA")" --file "$DATA" --overwrite --query etag -o tsv >/dev/null
fi

step "7. follow it"
cat <<EOF
runs:       curl -H "x-functions-key: \$(az functionapp keys list -g $RG -n $APP --query functionKeys.default -o tsv)" https://$APP.azurewebsites.net/api/runs
dashboard:  https://$APP.azurewebsites.net/api/dashboard?code=<the function key above>
production: az ml online-endpoint show -g $RG -w $WORKSPACE -n $(output prodEndpointName) --query traffic
EOF
