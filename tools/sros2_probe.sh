#!/usr/bin/env bash
# Does the pip-installed rmw_fastrtps (ros-jazzy wheels) run SROS2 / DDS-Security?
# Builds a DDS-Security keystore by hand with openssl (the layout `ros2 security create_keystore`
# and `create_enclave` make: identity and permissions CAs, an enclave's certificate and key,
# signed governance and permissions documents), then starts one rclpy node with
# ROS_SECURITY_ENABLE=true and ROS_SECURITY_STRATEGY=Enforce inside a private network namespace
# and prints what happened. Usage: bash tools/sros2_probe.sh [WORKDIR]   (docs/robustness.md)
set -euo pipefail
WORK=${1:-$(mktemp -d /tmp/sros2_probe.XXXXXX)}
KS=$WORK/keystore
ENC=$KS/enclaves/gossip_learning/probe
mkdir -p "$KS/public" "$KS/private" "$ENC"
cd "$WORK"

ca() {  # $1: name -> $1.key.pem, $1.cert.pem (self-signed EC P-256 CA)
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key.pem"
  openssl req -new -x509 -key "$1.key.pem" -out "$1.cert.pem" -days 30 -subj "/CN=sros2$1" \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null
}
ca identity_ca
ca permissions_ca
cp identity_ca.cert.pem permissions_ca.cert.pem "$KS/public/"
cp identity_ca.key.pem permissions_ca.key.pem "$KS/private/"

# the enclave's identity: key + certificate signed by the identity CA
openssl ecparam -name prime256v1 -genkey -noout -out "$ENC/key.pem"
openssl req -new -key "$ENC/key.pem" -out enclave.csr -subj '/CN=\/gossip_learning\/probe'
openssl x509 -req -in enclave.csr -CA identity_ca.cert.pem -CAkey identity_ca.key.pem \
  -CAcreateserial -out "$ENC/cert.pem" -days 30 2>/dev/null
cp identity_ca.cert.pem "$ENC/identity_ca.cert.pem"
cp permissions_ca.cert.pem "$ENC/permissions_ca.cert.pem"

cat > governance.xml <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">
  <domain_access_rules><domain_rule>
    <domains><id_range><min>0</min><max>230</max></id_range></domains>
    <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
    <enable_join_access_control>true</enable_join_access_control>
    <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
    <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
    <rtps_protection_kind>SIGN</rtps_protection_kind>
    <topic_access_rules><topic_rule>
      <topic_expression>*</topic_expression>
      <enable_discovery_protection>true</enable_discovery_protection>
      <enable_liveliness_protection>true</enable_liveliness_protection>
      <enable_read_access_control>true</enable_read_access_control>
      <enable_write_access_control>true</enable_write_access_control>
      <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
      <data_protection_kind>ENCRYPT</data_protection_kind>
    </topic_rule></topic_access_rules>
  </domain_rule></domain_access_rules>
</dds>
EOF
cat > permissions.xml <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">
  <permissions><grant name="/gossip_learning/probe">
    <subject_name>CN=/gossip_learning/probe</subject_name>
    <validity><not_before>2020-01-01T00:00:00</not_before><not_after>2040-01-01T00:00:00</not_after></validity>
    <allow_rule><domains><id_range><min>0</min><max>230</max></id_range></domains>
      <publish><topics><topic>*</topic></topics></publish>
      <subscribe><topics><topic>*</topic></topics></subscribe>
    </allow_rule>
    <default>DENY</default>
  </grant></permissions>
</dds>
EOF
for doc in governance permissions; do
  openssl smime -sign -text -in "$doc.xml" -out "$ENC/$doc.p7s" -signer permissions_ca.cert.pem \
    -inkey permissions_ca.key.pem
  cp "$doc.xml" "$ENC/$doc.xml"
done
openssl smime -verify -in "$ENC/permissions.p7s" -CAfile permissions_ca.cert.pem -text \
  >/dev/null 2>&1 && echo "probe: keystore signed and verifiable with openssl ($KS)"

NODE='import rclpy
from rclpy.context import Context
ctx = Context()
rclpy.init(context=ctx, args=["--ros-args", "--enclave", "/gossip_learning/probe"])
from rclpy.node import Node
from std_msgs.msg import String
node = Node("probe", context=ctx)
node.create_publisher(String, "probe", 10)
print("probe: node created with ROS_SECURITY_ENABLE=true, Enforce", flush=True)
node.destroy_node()
rclpy.shutdown(context=ctx)'
set +e
ROS_SECURITY_KEYSTORE=$KS ROS_SECURITY_ENABLE=true ROS_SECURITY_STRATEGY=Enforce \
  ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-77} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
  unshare -n python3 -c "$NODE" 2>&1
echo "probe: exit status $?"
